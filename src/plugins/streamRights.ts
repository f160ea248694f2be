import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { liveSessions } from '../domain/sessions.js'
import {
  type StreamClosedReason,
  endedSessions,
  lostRights,
  streamClosed,
} from '../domain/streamRights.js'
import { type Principal, storedTokens } from '../domain/tokens.js'
import { type StreamRefusal, type StreamSlot, StreamSlots } from '../events/streamSlots.js'

/**
 * How often the rights of open streams are checked. Half a second, so that a token that expired,
 * or was revoked unannounced (a DELETE in psql, a notice lost with the LISTEN connection), ends
 * its streams within a second, query included.
 */
const RIGHTS_SWEEP_MS = 500

export interface StreamRights {
  /**
   * Takes a stream slot for the principal's token, or names the cap that refuses it (counted in
   * `silo_sse_refused_total`). The caller releases the slot when the stream ends.
   */
  admit(principal: Principal): StreamSlot | StreamRefusal
}

declare module 'fastify' {
  interface FastifyInstance {
    streamRights: StreamRights
  }
}

/**
 * Caps open event streams per token and in all, and ends streams whose token has lost its right
 * to them: a revocation or sign-out through any replica or the CLI as soon as its notice reaches
 * this process (`principals.onWithdrawn`), and everything else on one timer for the process:
 * every RIGHTS_SWEEP_MS it ends the streams of tokens whose expiry has passed, then asks the
 * database in one query about every token holding a stream here. While that query fails,
 * streams stay open (the database blinking is no reason to drop every client).
 */
export default fp<{ events: Config['events'] }>(
  async (app, { events }) => {
    const slots = new StreamSlots<number, number | null>({
      perOwner: events.max_streams_per_token,
      total: events.max_streams,
    })
    // Streams opened through a browser session, counted per session with its end; no cap of
    // their own (their token's counts).
    const sessionSlots = new StreamSlots<string, number>({ perOwner: Infinity, total: Infinity })
    /** Ends the streams whose owner (the principal that opened them) `lost` names. */
    const endWhere = <K>(
      lost: ReadonlyMap<K, StreamClosedReason>,
      keyOf: (owner: Principal) => K | undefined,
    ) => {
      for (const reason of new Set(lost.values())) {
        const ended = app.broker.closeWhere((owner) => {
          const key = keyOf(owner as Principal)
          return key !== undefined && lost.get(key) === reason
        }, streamClosed(reason))
        if (ended > 0) app.metrics.streamsClosed.inc({ reason }, ended)
      }
    }
    const endStreams = (lost: ReadonlyMap<number, StreamClosedReason>) =>
      endWhere(lost, (owner) => owner.tokenId)
    const endSessions = (lost: ReadonlyMap<string, StreamClosedReason>) =>
      endWhere(lost, (owner) => owner.session?.id)
    const rights: StreamRights = {
      admit(principal) {
        const slot = slots.acquire(principal.tokenId, principal.expiresAt)
        if (typeof slot === 'string') {
          app.metrics.streamsRefused.inc({ reason: slot })
          return slot
        }
        const { session } = principal
        if (!session) return slot
        const held = sessionSlots.acquire(session.id, session.expiresAt) as StreamSlot
        return {
          release() {
            slot.release()
            held.release()
          },
        }
      },
    }
    app.decorate('streamRights', rights)
    // Revocations and sign-outs through any replica or the CLI, here as soon as their notice is.
    app.principals.onWithdrawn((ended) => {
      if ('tokenId' in ended) endStreams(new Map([[ended.tokenId, 'token_revoked']]))
      else endSessions(new Map([[ended.sessionId, 'signed_out']]))
    })

    /** Resolves false when nothing needed checking. */
    const sweep = async (): Promise<boolean> => {
      const holders = [...slots.holders()]
      if (holders.length === 0) return false
      // Expiries known since authentication need no database.
      endStreams(lostRights(holders, null, Date.now()))
      const ids = holders.map(([tokenId]) => tokenId)
      const lost = lostRights(holders, await storedTokens(app.db, ids), Date.now())
      // A revocation this process was not told of (a DELETE behind silo's back) ends what it
      // remembers of the token too, before its streams end.
      for (const [tokenId, reason] of lost) {
        if (reason === 'token_revoked') app.principals.cache.forget({ tokenId })
      }
      endStreams(lost)
      const held = [...sessionSlots.holders()]
      if (held.length > 0) {
        endSessions(endedSessions(held, null, Date.now()))
        const live = await liveSessions(
          app.db,
          held.map(([id]) => id),
        )
        const ended = endedSessions(held, live, Date.now())
        for (const sessionId of ended.keys()) app.principals.cache.forget({ sessionId })
        endSessions(ended)
      }
      return true
    }
    let failing = false
    let sweeping: Promise<void> | null = null
    const timer = setInterval(() => {
      // A slow database must not pile sweeps up: the tick after it answers starts the next.
      sweeping ??= sweep()
        .then(
          (checked) => {
            if (checked && failing) app.log.info('checking the tokens of open event streams again')
            if (checked) failing = false
          },
          (err: unknown) => {
            if (!failing) {
              app.log.warn({ err }, 'cannot check the tokens of open event streams; they stay open')
            }
            failing = true
          },
        )
        .finally(() => {
          sweeping = null
        })
    }, RIGHTS_SWEEP_MS)
    timer.unref()
    app.addHook('preClose', async () => {
      clearInterval(timer)
      await sweeping
    })
  },
  { name: 'streamRights', dependencies: ['database', 'broker', 'metrics', 'principals'] },
)
