/**
 * The server mode, derived from three inputs: this process's read-only switch (config and
 * SIGUSR1), the fleet's read-only switch (admin API, shared by every replica through the
 * database) and the storage health. Either switch makes the server read-only, and read-only wins
 * over degraded. All transitions are synchronous, so repeated signals cannot race.
 */
export const MODES = ['normal', 'read-only', 'degraded'] as const
export type Mode = (typeof MODES)[number]

export interface ModeChange {
  mode: Mode
  previous: Mode
  reason: string
}

export class ModeMachine {
  private localReadOnly: boolean
  private fleetReadOnly = false
  private storageHealthy = true
  private current: Mode
  private readonly listeners = new Set<(change: ModeChange) => void>()

  constructor(options: { readOnly: boolean }) {
    this.localReadOnly = options.readOnly
    this.current = this.derive()
  }

  get mode(): Mode {
    return this.current
  }

  get isReadOnly(): boolean {
    return this.localReadOnly || this.fleetReadOnly
  }

  /** Which switches hold the server read-only. */
  get readOnlySwitches(): { local: boolean; fleet: boolean } {
    return { local: this.localReadOnly, fleet: this.fleetReadOnly }
  }

  get isStorageHealthy(): boolean {
    return this.storageHealthy
  }

  onChange(listener: (change: ModeChange) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** This process's switch (config, SIGUSR1). */
  setReadOnly(readOnly: boolean, reason: string): ModeChange | null {
    this.localReadOnly = readOnly
    return this.update(reason)
  }

  toggleReadOnly(reason: string): ModeChange | null {
    return this.setReadOnly(!this.localReadOnly, reason)
  }

  /** The fleet's switch, as stored in the database. */
  setFleetReadOnly(readOnly: boolean, reason: string): ModeChange | null {
    this.fleetReadOnly = readOnly
    return this.update(reason)
  }

  setStorageHealthy(healthy: boolean, reason: string): ModeChange | null {
    this.storageHealthy = healthy
    return this.update(reason)
  }

  private derive(): Mode {
    if (this.isReadOnly) return 'read-only'
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
