import { performance } from 'node:perf_hooks'

/**
 * A share of one turn of the event loop for many independent async loops, such as the pumps of
 * subscribers catching up after a burst. Each pump alone yields often enough, but a hundred of
 * them resume in the same turn (their reads complete together) and would write for tens of
 * milliseconds before the loop polls for I/O again. Before a unit of synchronous work a loop
 * asks `tryTake()`: true while this turn has spent less than `sliceMs` on such work (the unit
 * must then run at once, so the next caller sees its cost), else it awaits `nextTurn()`, which
 * resolves after the event loop has answered others (probes, requests).
 */
export class TurnBudget {
  private windowStart: number | null = null
  private waiting: Promise<void> | null = null

  constructor(
    private readonly sliceMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  tryTake(): boolean {
    const now = this.now()
    if (this.windowStart === null) {
      this.windowStart = now
      // The window ends with this turn: work in the next one starts a new window.
      setImmediate(() => (this.windowStart = null))
      return true
    }
    return now - this.windowStart < this.sliceMs
  }

  nextTurn(): Promise<void> {
    this.waiting ??= new Promise((resolve) =>
      setImmediate(() => {
        this.waiting = null
        this.windowStart = null
        resolve()
      }),
    )
    return this.waiting
  }
}
