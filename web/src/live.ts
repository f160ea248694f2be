import { computed, signal } from '@preact/signals'
import { api } from './api.ts'
import type { StoredEventType } from '../../src/events/catalogue.ts'
import { type Connection, EventStream, type ServerMode, type StoredEvent } from './eventStream.ts'

/**
 * The page's shared live state: who is signed in, the stream's connection and the server's
 * mode, and one event stream that every view listens to.
 */

export interface Session {
  token_id: number
  name: string
  role: 'viewer' | 'editor' | 'admin'
}

/** Undefined while the page asks whether a session exists. */
export const session = signal<Session | null | undefined>(undefined)
/** Why the last session ended, shown on the sign-in form. */
export const signedOutReason = signal<string | null>(null)
export const connection = signal<Connection>('connecting')
export const mode = signal<ServerMode | null>(null)
/** A line for the banner, e.g. that the views were refetched after a reset. */
export const notice = signal<string | null>(null)

const ROLE_RANK = { viewer: 0, editor: 1, admin: 2 } as const

/** Metadata writes: the role allows them and the server takes them (not read-only, not draining). */
export const canWrite = computed(
  () =>
    session.value != null &&
    ROLE_RANK[session.value.role] >= ROLE_RANK.editor &&
    (mode.value === 'normal' || mode.value === 'degraded'),
)
/** Uploads and downloads need the object storage too. */
export const canUseFiles = computed(() => mode.value === 'normal')
export const isAdmin = computed(() => session.value?.role === 'admin')

export interface LiveListener {
  event?(event: StoredEvent): void
  /** The stream could not resume: refetch whatever is shown. */
  reset?(): void
}

const listeners = new Set<LiveListener>()

/** Listens to the stream; returns the function that stops listening. */
export function listen(listener: LiveListener): () => void {
  listeners.add(listener)
  return () => listeners.delete(listener)
}

/**
 * Every stored event type: EventSource delivers only named types it listens to. Checked against
 * the server's event catalogue both ways, so a type added there is a type error here.
 */
export const STORED_TYPES = [
  'item.created',
  'item.updated',
  'item.deleted',
  'revision.created',
] as const satisfies readonly StoredEventType[]
type Unlistened = Exclude<StoredEventType, (typeof STORED_TYPES)[number]>
const listensToEveryType: [Unlistened] extends [never] ? true : Unlistened = true
void listensToEveryType

let stream: EventStream | null = null

const REASONS: Record<string, string> = {
  token_revoked: 'Your token was revoked.',
  token_expired: 'Your token expired.',
  signed_out: 'Your session ended.',
}

export function describeReason(reason: string): string {
  return REASONS[reason] ?? `The session ended (${reason}).`
}

export function endSession(reason: string | null): void {
  stream?.stop()
  stream = null
  signedOutReason.value = reason ? describeReason(reason) : null
  session.value = null
}

export function startLive(): void {
  stream?.stop()
  stream = new EventStream(
    {
      url: '/api/events',
      storedTypes: STORED_TYPES,
      online: () => navigator.onLine,
      stillSignedIn: async () => {
        try {
          await api('/api/session')
          return true
        } catch (err) {
          return (err as { status?: number }).status !== 401
        }
      },
    },
    {
      event: (event) => {
        for (const l of listeners) l.event?.(event)
      },
      reset: () => {
        notice.value =
          'The event stream could not resume where this page was; everything shown was reloaded.'
        for (const l of listeners) l.reset?.()
      },
      closed: (reason) => endSession(reason),
      status: (c, m) => {
        connection.value = c
        mode.value = m
      },
    },
  )
  stream.start()
}

window.addEventListener('online', () => stream?.networkChanged())
window.addEventListener('offline', () => stream?.networkChanged())
