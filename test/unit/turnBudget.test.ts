import { describe, expect, it } from 'vitest'
import { TurnBudget } from '../../src/events/turnBudget.js'

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Counts turns of the event loop until stopped, and how many `units()` ran in each. */
function watchTurns(units: () => number): () => Promise<number[]> {
  const between: number[] = []
  let seen = 0
  let stopped = false
  const watching = (async () => {
    while (!stopped) {
      await nextTurn()
      between.push(units() - seen)
      seen = units()
    }
  })()
  return async () => {
    stopped = true
    await watching
    return between
  }
}

describe('TurnBudget', () => {
  it('lets many loops together work one slice per turn, and others run between slices', async () => {
    // A clock that moves only with the work: each unit costs 3 ms, a slice is 10 ms.
    let clock = 0
    const budget = new TurnBudget(10, () => clock)
    let units = 0
    const loop = async () => {
      for (let i = 0; i < 20; i++) {
        // A read that completes for every loop in the same turn.
        await Promise.resolve()
        while (!budget.tryTake()) await budget.nextTurn()
        clock += 3
        units++
      }
    }
    const stop = watchTurns(() => units)
    await Promise.all(Array.from({ length: 50 }, loop))
    const between = await stop()
    expect(units).toBe(1000)
    // Units start while less than 10 ms were spent: at 0, 3, 6 and 9 ms.
    expect(Math.max(...between)).toBeLessThanOrEqual(4)
  })

  it('costs a lone loop no turn while its slice lasts', async () => {
    let clock = 0
    const budget = new TurnBudget(10, () => clock)
    let units = 0
    const stop = watchTurns(() => units)
    for (let i = 0; i < 4; i++) {
      await Promise.resolve()
      while (!budget.tryTake()) await budget.nextTurn()
      clock += 2
      units++
    }
    expect(await stop()).toEqual([4])
  })
})
