/**
 * Checks one client's received id sequence against the published events: no id twice, ids
 * increasing, and every gap (published ids skipped between two received ones, or after the
 * last one) announced by a stream.reset at that point.
 */

export interface SequenceReport {
  deliveries: number
  duplicated: number
  outOfOrder: number
  resets: number
  /** Gaps with a stream.reset between the two ids around them. */
  gapsExplained: number
  /** Events skipped inside explained gaps. */
  skippedByResets: number
  /** Gaps without a reset: every event in them is lost. */
  unexplainedGaps: number
  lost: number
}

/** The published ids, sorted, with counting by range. */
export class PublishedIds {
  readonly sorted: Float64Array

  constructor(ids: Iterable<number>) {
    this.sorted = Float64Array.from(new Set(ids)).sort()
  }

  get count(): number {
    return this.sorted.length
  }

  /** How many published ids are strictly between `low` and `high`. */
  between(low: number, high: number): number {
    return Math.max(0, this.firstAbove(high - 1) - this.firstAbove(low))
  }

  /** Index of the first id greater than `id`. */
  private firstAbove(id: number): number {
    let lo = 0
    let hi = this.sorted.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((this.sorted[mid] as number) <= id) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

export function checkSequence(
  ids: readonly number[],
  resetsAt: readonly number[],
  published: PublishedIds,
  latestId: number,
): SequenceReport {
  const report: SequenceReport = {
    deliveries: ids.length,
    duplicated: 0,
    outOfOrder: 0,
    resets: resetsAt.length,
    gapsExplained: 0,
    skippedByResets: 0,
    unexplainedGaps: 0,
    lost: 0,
  }
  const resetBefore = new Set(resetsAt)
  const seen = new Set<number>()
  let highest = -Infinity
  const gap = (from: number, to: number, at: number) => {
    const missing = published.between(from, to)
    if (missing === 0) return
    if (resetBefore.has(at)) {
      report.gapsExplained++
      report.skippedByResets += missing
    } else {
      report.unexplainedGaps++
      report.lost += missing
    }
  }
  ids.forEach((id, i) => {
    if (seen.has(id)) {
      report.duplicated++
      return
    }
    seen.add(id)
    if (id < highest) {
      report.outOfOrder++
      return
    }
    // The first id has nothing before it: a client that starts without Last-Event-ID begins live.
    if (i > 0) gap(highest, id, i)
    highest = id
  })
  if (ids.length > 0) gap(highest, latestId + 1, ids.length)
  return report
}
