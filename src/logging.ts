import type { FastifyServerOptions } from 'fastify'
import { type DestinationStream, destination } from 'pino'
import type { Config } from './config.js'

/**
 * How silo logs, and the rule that no secret reaches a log line (README, "Security").
 *
 * A request's URL is logged as its path and the names of its query parameters, never their
 * values: the event stream takes `?token=`, and a malformed query (`?token[]=`, `?;token=`,
 * `?t%00oken=`, a second `?`) can still carry a live secret under a name no pattern expects.
 * Behind that, every line is scrubbed of anything shaped like a token before it is written,
 * whatever code path produced it.
 */

/** A query parameter name shown as written; anything else is replaced, lest it be a secret. */
const PLAIN_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,31}$/

export function loggedUrl(url: string): string {
  const at = url.indexOf('?')
  const path = at < 0 ? url : url.slice(0, at)
  if (at < 0 || at === url.length - 1) return path
  const names = url
    .slice(at + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=')
      const name = eq < 0 ? pair : pair.slice(0, eq)
      return `${PLAIN_NAME.test(name) ? name : '[name]'}=[REDACTED]`
    })
  return `${path}?${names.join('&')}`
}

/** `silo_` and the 43 base64url characters of a secret; far longer than any metric's name. */
const TOKEN_SHAPED = /silo_[A-Za-z0-9_-]{32,}/g

export function scrubSecrets(line: string): string {
  return line.includes('silo_') ? line.replace(TOKEN_SHAPED, 'silo_[REDACTED]') : line
}

/** Wraps a log destination so that every line is scrubbed before it is written. */
export function scrubbedDestination(stream: DestinationStream): DestinationStream {
  return { write: (line: string) => stream.write(scrubSecrets(line)) }
}

/**
 * Standard output, written asynchronously. Once its reader has gone (`npm start | head -1`) lines
 * are dropped: pino stops writing at the first EPIPE, and the flush it makes as the process
 * exits must not fail the exit either (sonic-boom is pinned to 5.x in package.json `overrides`,
 * whose flush reports EPIPE where 4.x retried it forever).
 */
function standardOutput(): DestinationStream {
  const stream = destination(1)
  const flushSync = stream.flushSync.bind(stream)
  stream.flushSync = () => {
    try {
      flushSync()
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EPIPE') throw err
    }
  }
  return stream
}

export function loggerOptions(
  config: Config,
  stream: DestinationStream = standardOutput(),
): FastifyServerOptions['logger'] {
  return {
    level: config.log.level,
    stream: scrubbedDestination(stream),
    serializers: {
      req: (req: { method: string; url: string; ip?: string }) => ({
        method: req.method,
        url: loggedUrl(req.url),
        remoteAddress: req.ip,
      }),
    },
  }
}
