import type { EventType } from './catalogue.js'

/**
 * The SSE wire format, built here and nowhere else. Data is always one line of JSON, so no
 * payload can inject fields; comments and field names never come from user input.
 */

export interface WireEvent {
  id?: number
  type: EventType
  data: unknown
}

export function encodeEvent(event: WireEvent): Buffer {
  const id = event.id === undefined ? '' : `id: ${event.id}\n`
  // JSON.stringify escapes \n and \r inside strings; U+2028/2029 are legal in SSE data lines.
  return Buffer.from(`${id}event: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`)
}

export function encodeRetry(ms: number): Buffer {
  return Buffer.from(`retry: ${Math.max(0, Math.floor(ms))}\n\n`)
}

/**
 * Parses a Last-Event-ID value. Anything that is not a non-negative safe integer is treated as
 * absent (README "The event stream": a malformed id is never an error).
 */
export function parseLastEventId(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^[0-9]{1,16}$/.test(value.trim())) return undefined
  const id = Number(value.trim())
  return Number.isSafeInteger(id) ? id : undefined
}
