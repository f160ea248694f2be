import { describe, expect, it } from 'vitest'
import { type Entry, EventHistory } from '../../src/events/eventHistory.js'
import { holdReads, MemoryLog } from '../support/memoryLog.js'

async function historyOf(log: MemoryLog, windowSize = 8, pageSize = 4) {
  const taken: number[] = []
  const history = new EventHistory({
    source: log,
    windowSize,
    pageSize,
    onTaken: (count) => taken.push(count),
  })
  await history.start()
  return { history, taken }
}

const ids = (entries: Entry[] | 'reset') =>
  entries === 'reset' ? entries : entries.map((e) => e.id)

describe('EventHistory', () => {
  it('starts at the newest id and retention watermark the log holds', async () => {
    // Given a log with ten events of which three were pruned
    const log = new MemoryLog()
    log.append(10)
    log.prune(3)
    // When the history starts over it
    const { history } = await historyOf(log)
    // Then it knows both, without having read a single event
    expect([history.latestId, history.prunedThrough]).toEqual([10, 3])
  })

  it('takes events committed right after the newest id without reading them back', async () => {
    const log = new MemoryLog()
    // Given three events committed right after the newest known id
    const { history, taken } = await historyOf(log)
    log.append(3)
    const readsBefore = log.reads

    // When they are handed over as the insert returned them
    await history.takeCommitted(log.events)

    // Then they are taken without a read and are readable from memory

    expect(log.reads).toBe(readsBefore)
    expect(history.latestId).toBe(3)
    expect(taken).toEqual([3])
    expect(ids(await history.entriesAfter(0, 10))).toEqual([1, 2, 3])
  })

  it('reads the log when committed events skip an id, or when none are given', async () => {
    const log = new MemoryLog()
    // Given events whose first one is missing from what is handed over
    const { history, taken } = await historyOf(log)
    log.append(3)

    // When they are handed over, and later nothing is (another process committed)
    await history.takeCommitted(log.events.slice(1))
    expect(history.latestId).toBe(3)
    log.append(2)
    await history.takeCommitted([])

    // Then both times the log was read, and every event taken once
    expect(history.latestId).toBe(5)
    expect(taken.reduce((a, b) => a + b)).toBe(5)
    expect(ids(await history.entriesAfter(0, 10))).toEqual([1, 2, 3, 4, 5])
  })

  it('takes commits whose answers overtook each other without reading the log', async () => {
    const log = new MemoryLog()
    const { history, taken } = await historyOf(log)
    log.append(3)
    const readsBefore = log.reads
    // When the insert of 3 answers first, then that of 1 and 2
    const handed = [
      history.takeCommitted(log.events.slice(2)),
      history.takeCommitted(log.events.slice(0, 2)),
    ]
    await Promise.all(handed)
    // Then all three are taken in order, as handed over
    expect(log.reads).toBe(readsBefore)
    expect(taken).toEqual([2, 1])
    expect(ids(await history.entriesAfter(0, 10))).toEqual([1, 2, 3])
  })

  it('reads the log for a commit notice only when its events do not come in as commits', async () => {
    const log = new MemoryLog()
    const { history } = await historyOf(log)
    // Given a notice for this process's own commit, whose answer comes in right after it
    log.append(2)
    const readsBefore = log.reads
    const own = history.noticeCommitted(2)
    await history.takeCommitted(log.events.slice())
    await own
    expect(log.reads).toBe(readsBefore)
    // When another process commits and only its notice comes in
    log.append(3)
    await history.noticeCommitted(5)
    // Then the log is read for it, and every event is there once, in order
    expect(log.reads).toBeGreaterThan(readsBefore)
    expect(history.latestId).toBe(5)
    expect(ids(await history.entriesAfter(0, 10))).toEqual([1, 2, 3, 4, 5])
  })

  it('takes commits handed over during a read at its end, without reading them back', async () => {
    const log = new MemoryLog()
    const { history, taken } = await historyOf(log)
    // Given a read of the log under way (another process committed two events)
    log.append(2)
    const { release } = holdReads(log, 'as-asked')
    const reading = history.readNew()
    const readsBefore = log.reads
    // When this process commits three more, in two inserts whose answers arrive out of order,
    // while the read runs
    log.append(3)
    const handed = [
      history.takeCommitted(log.events.slice(4)),
      history.takeCommitted(log.events.slice(2, 4)),
    ]
    release()
    await Promise.all([reading, ...handed])
    // Then they were taken as handed over when the read ended, not read again
    expect(log.reads).toBe(readsBefore)
    expect(history.latestId).toBe(5)
    expect(taken).toEqual([2, 2, 1])
    expect(ids(await history.entriesAfter(0, 10))).toEqual([1, 2, 3, 4, 5])
  })

  it('reads on after a read when commits handed over during it leave a gap', async () => {
    const log = new MemoryLog()
    const { history } = await historyOf(log)
    const { release } = holdReads(log)
    // Given a read under way, and a commit handed over that does not follow what it will find
    // (the events before it came from elsewhere)
    const reading = history.readNew()
    log.append(3)
    const handed = history.takeCommitted(log.events.slice(2))
    release()
    await Promise.all([reading, handed])
    // Then the log was read on, and every event is there once, in order
    expect(history.latestId).toBe(3)
    expect(ids(await history.entriesAfter(0, 10))).toEqual([1, 2, 3])
  })

  it('shares one read of new events between concurrent callers', async () => {
    const log = new MemoryLog()
    const { history } = await historyOf(log)
    log.append(2)
    const readsBefore = log.reads

    // When three callers ask for new events at once
    await Promise.all([history.readNew(), history.readNew(), history.readNew()])

    // Then
    // there was one read of the log, and one more for what was asked while it ran
    expect(log.reads - readsBefore).toBe(2)
    expect(history.latestId).toBe(2)
  })

  it('serves the window from memory and older events from log pages read once for all readers', async () => {
    const log = new MemoryLog()
    // Given more events than the window holds
    const { history } = await historyOf(log, 4, 4)
    log.append(20)
    await history.readNew()
    expect(history.inWindow(0)).toBe(false)
    expect(history.inWindow(19)).toBe(true)
    const readsBefore = log.reads

    // When two readers ask from the start at once, and one from within the window
    const [a, b] = await Promise.all([history.entriesAfter(0, 10), history.entriesAfter(0, 10)])
    const fromWindow = await history.entriesAfter(18, 10)

    // Then both get the same page, read once, and the window needs no read

    expect(ids(a)).toEqual([1, 2, 3, 4])
    expect(b).toBe(a)
    expect(ids(fromWindow)).toEqual([19, 20])
    expect(history.windowAfter(18, 1).map((e) => e.id)).toEqual([19])
    expect(log.reads - readsBefore).toBe(1)
  })

  it('answers reset for a cursor behind retention, also when pruning ran during the read', async () => {
    const log = new MemoryLog()
    const { history } = await historyOf(log, 4, 4)
    log.append(20)
    await history.readNew()

    // When retention is known to have pruned past a cursor, then it is reset
    history.notePruned(5)
    expect(await history.entriesAfter(2, 10)).toBe('reset')
    expect(history.inWindow(2)).toBe(false)

    // When retention prunes past a cursor while its page is read, then it is reset too
    log.prune(8)
    expect(await history.entriesAfter(6, 10)).toBe('reset')
    expect(history.prunedThrough).toBe(8)
  })
})
