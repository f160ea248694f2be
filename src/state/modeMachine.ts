/**
 * The server mode, derived from two inputs: the operator's read-only switch and the storage
 * health. Read-only wins over degraded. All transitions are synchronous, so repeated signals
 * cannot race.
 */
export type Mode = 'normal' | 'read-only' | 'degraded'

export interface ModeChange {
  mode: Mode
  previous: Mode
  reason: string
}

export class ModeMachine {
  private readOnly: boolean
  private storageHealthy = true
  private current: Mode
  private readonly listeners = new Set<(change: ModeChange) => void>()

  constructor(options: { readOnly: boolean }) {
    this.readOnly = options.readOnly
    this.current = this.derive()
  }

  get mode(): Mode {
    return this.current
  }

  get isReadOnly(): boolean {
    return this.readOnly
  }

  get isStorageHealthy(): boolean {
    return this.storageHealthy
  }

  onChange(listener: (change: ModeChange) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  setReadOnly(readOnly: boolean, reason: string): ModeChange | null {
    this.readOnly = readOnly
    return this.update(reason)
  }

  toggleReadOnly(reason: string): ModeChange | null {
    return this.setReadOnly(!this.readOnly, reason)
  }

  setStorageHealthy(healthy: boolean, reason: string): ModeChange | null {
    this.storageHealthy = healthy
    return this.update(reason)
  }

  private derive(): Mode {
    if (this.readOnly) return 'read-only'
    if (!this.storageHealthy) return 'degraded'
    return 'normal'
  }

  private update(reason: string): ModeChange | null {
    const next = this.derive()
    if (next === this.current) return null
    const change: ModeChange = { mode: next, previous: this.current, reason }
    this.current = next
    for (const listener of this.listeners) listener(change)
    return change
  }
}
