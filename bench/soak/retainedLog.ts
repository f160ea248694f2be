import { SseConnection, type CapturedEvent, type Tally } from '../lib/sseLoad.js'

export interface RetainedLog {
  /** Ids of every retained event, in the order the replay sent them. */
  ids: number[]
  /** The id of the fence item's item.created event: the newest event of the run. */
  fenceId: number
  /** Resets the replay met before it could start (pruned history), with what they said. */
  resets: { last_event_id: number; oldest_available_id: number }[]
}

/** Replays after `afterId` until the fence item appears or a stream.reset arrives. */
function replay(
  baseUrl: string,
  token: string,
  afterId: number,
  fencePartNumber: string,
  timeoutMs: number,
): Promise<{ ids: number[]; fenceId?: number; reset?: RetainedLog['resets'][number] }> {
  return new Promise((resolve, reject) => {
    const ids: number[] = []
    let connection: SseConnection | null = null
    const timer = setTimeout(() => {
      connection?.close()
      reject(new Error(`replay after ${afterId}: no fence after ${ids.length} events`))
    }, timeoutMs)
    const finish = (result: Awaited<ReturnType<typeof replay>>) => {
      clearTimeout(timer)
      connection?.close()
      resolve(result)
    }
    const tally: Tally = {
      epoch: 0,
      countedType: -1,
      target: Number.MAX_SAFE_INTEGER,
      reached: () => {},
      closed: () => {
        clearTimeout(timer)
        reject(new Error(`replay after ${afterId} closed after ${ids.length} events`))
      },
    }
    const onEvent = (event: CapturedEvent) => {
      if (event.type === 'stream.reset') {
        finish({ ids, reset: JSON.parse(event.data) as RetainedLog['resets'][number] })
      } else if (event.id !== undefined) {
        ids.push(event.id)
        if (
          event.type === 'item.created' &&
          (JSON.parse(event.data) as { part_number?: string }).part_number === fencePartNumber
        ) {
          finish({ ids, fenceId: event.id })
        }
      }
    }
    connection = new SseConnection(tally, { baseUrl, token, lastEventId: afterId, onEvent }, 16)
  })
}

/**
 * Reads every event the server still retains, through the stream itself (the server holds
 * PGlite exclusively): a replay from Last-Event-ID 0. When history was pruned the server
 * answers with stream.reset and continues live from its newest event, so the replay is
 * repeated from `oldest_available_id - 1`.
 */
export async function readRetainedLog(
  baseUrl: string,
  token: string,
  fencePartNumber: string,
  timeoutMs = 120_000,
): Promise<RetainedLog> {
  const resets: RetainedLog['resets'] = []
  let afterId = 0
  for (let attempt = 0; attempt < 10; attempt++) {
    const result = await replay(baseUrl, token, afterId, fencePartNumber, timeoutMs)
    if (result.fenceId !== undefined) return { ids: result.ids, fenceId: result.fenceId, resets }
    if (!result.reset) break
    resets.push(result.reset)
    afterId = result.reset.oldest_available_id - 1
  }
  throw new Error('could not replay the retained log')
}
