/** Which cap turned a stream away, named after the config key that sets it. */
export type StreamRefusal = 'max_streams_per_token' | 'max_streams'

export interface StreamSlotLimits {
  /** Most streams one owner may hold at once. */
  perOwner: number
  /** Most streams this process holds at once, over all owners. */
  total: number
}

/** A taken slot; releasing it more than once releases it once. */
export interface StreamSlot {
  release(): void
}

/**
 * Counts open event streams per owner (the token that opened them) and in all, against two caps.
 * Each owner also keeps what was known about it when it took its first slot (its token's
 * expiry), for whoever checks the rights of every holder. Plain bookkeeping: nothing here waits,
 * writes or knows what an owner is.
 */
export class StreamSlots<Owner, Info> {
  private readonly held = new Map<Owner, { count: number; info: Info }>()
  private taken = 0

  constructor(private readonly limits: StreamSlotLimits) {}

  /** Slots taken now, over all owners. */
  get inUse(): number {
    return this.taken
  }

  /** Takes a slot for `owner`, or names the cap that refuses one. */
  acquire(owner: Owner, info: Info): StreamSlot | StreamRefusal {
    const holding = this.held.get(owner)
    if ((holding?.count ?? 0) >= this.limits.perOwner) return 'max_streams_per_token'
    if (this.taken >= this.limits.total) return 'max_streams'
    if (holding) holding.count++
    else this.held.set(owner, { count: 1, info })
    this.taken++
    let released = false
    return {
      release: () => {
        if (released) return
        released = true
        this.taken--
        const entry = this.held.get(owner) as { count: number }
        if (--entry.count === 0) this.held.delete(owner)
      },
    }
  }

  /** Every owner holding a slot now, with the info it gave with its first. */
  *holders(): IterableIterator<[Owner, Info]> {
    for (const [owner, { info }] of this.held) yield [owner, info]
  }
}
