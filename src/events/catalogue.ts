import { type Static, type TSchema, Type } from 'typebox'
import {
  Actor,
  BomLine,
  Comment,
  Description,
  type Item,
  ItemType,
  literalUnion,
  Mode,
  PartNumber,
  Properties,
  type Revision,
  RevisionFile,
  ServerMode,
  Version,
} from '../domain/schemas.js'

/**
 * Every event the stream sends, with its payload schema, written once. Every stored event
 * carries `actor`, who caused it, and every event about an item the `version` it made. The
 * domain emits stored events only through the constructors below, the README's event table is
 * checked against this catalogue by a test, and the API description of `GET /api/events` is
 * generated from it. Clients must accept fields they do not know, so payload objects allow more
 * than they list.
 */

export interface EventDefinition {
  /** A row of the event log, with an `id:` and replayable; otherwise sent live only. */
  stored: boolean
  description: string
  data: TSchema
}

export const eventCatalogue = {
  'item.created': {
    stored: true,
    description: 'An item was created (POST /api/items, or a row of an import).',
    data: Type.Object({
      part_number: PartNumber,
      description: Description,
      item_type: ItemType,
      properties: Properties,
      version: Version,
      actor: Actor,
    }),
  },
  'item.updated': {
    stored: true,
    description:
      'An item changed: the fields whose value changed (PATCH, an import row), or `bom`, the ' +
      'whole BOM of the parent after a change of it.',
    data: Type.Object({
      part_number: PartNumber,
      version: Version,
      actor: Actor,
      description: Type.Optional(Description),
      item_type: Type.Optional(ItemType),
      properties: Type.Optional(Properties),
      bom: Type.Optional(Type.Array(BomLine)),
    }),
  },
  'item.deleted': {
    stored: true,
    description:
      'An item was deleted, with its revisions and its own BOM lines; `version` is the one it ' +
      'had.',
    data: Type.Object({ part_number: PartNumber, version: Version, actor: Actor }),
  },
  'revision.created': {
    stored: true,
    description:
      "A revision was made; `file` is there when it has one, `version` is the item's after it.",
    data: Type.Object({
      part_number: PartNumber,
      version: Version,
      actor: Actor,
      revision_number: Type.Integer({ minimum: 1 }),
      comment: Comment,
      file: Type.Optional(RevisionFile),
    }),
  },
  'server.state': {
    stored: false,
    description:
      'The server mode: first on every stream as `{mode}`, then `{mode, previous, reason}` on ' +
      'each change, and `{mode: "shutting-down"}` before the stream ends at shutdown.',
    data: Type.Object({
      mode: ServerMode,
      previous: Type.Optional(Mode),
      reason: Type.Optional(Type.String()),
    }),
  },
  heartbeat: {
    stored: false,
    description: 'Sent to caught-up clients every events.heartbeat_interval (30 s) when idle.',
    data: Type.Object({}),
  },
  'stream.reset': {
    stored: false,
    description:
      'The requested Last-Event-ID cannot be replayed (pruned, or newer than the log) or the ' +
      'client fell behind the retained history: refetch, then carry on. Not a row of the log, ' +
      'but it carries an `id:`, the newest id at the reset, which the stream resumes after.',
    data: Type.Object({
      last_event_id: Type.Integer({ minimum: 0 }),
      oldest_available_id: Type.Integer({ minimum: 0 }),
    }),
  },
  'stream.closed': {
    stored: false,
    description:
      'The right the stream was opened with ended (its token revoked or expired, its browser session signed out or expired); the stream ends after it.',
    data: Type.Object({
      reason: literalUnion(['token_revoked', 'token_expired', 'signed_out', 'session_expired']),
    }),
  },
} satisfies Record<string, EventDefinition>

export type EventType = keyof typeof eventCatalogue
export type EventData<T extends EventType> = Static<(typeof eventCatalogue)[T]['data']>

export const EVENT_TYPES = Object.keys(eventCatalogue) as readonly EventType[]

type StoredFlag<T extends EventType> = (typeof eventCatalogue)[T]['stored']

/** The types that are rows of the event log. */
export type StoredEventType = {
  [T in EventType]: StoredFlag<T> extends true ? T : never
}[EventType]
export type LiveEventType = Exclude<EventType, StoredEventType>

export const STORED_EVENT_TYPES = EVENT_TYPES.filter(
  (type) => eventCatalogue[type].stored,
) as readonly StoredEventType[]

export function isEventType(name: string): name is EventType {
  return Object.prototype.hasOwnProperty.call(eventCatalogue, name)
}

/** A stored event before it has an id: what the domain emits inside its transaction. */
export type NewEvent = {
  [T in StoredEventType]: { type: T; part_number: string | null; data: EventData<T> }
}[StoredEventType]

/** An event sent live, never stored (no `id:`). */
export type LiveEvent = { [T in LiveEventType]: { type: T; data: EventData<T> } }[LiveEventType]

/** What `item.created` says of an item: its fields and version, not who made it when. */
type ItemFields = Pick<Item, 'part_number' | 'description' | 'item_type' | 'properties' | 'version'>

export function itemCreated(item: ItemFields, actor: Actor): NewEvent {
  const { part_number, description, item_type, properties, version } = item
  return {
    type: 'item.created',
    part_number,
    data: { part_number, description, item_type, properties, version, actor },
  }
}

/** `changed`: the fields whose value changed, or the parent's whole `bom`. */
export function itemUpdated(
  partNumber: string,
  version: number,
  actor: Actor,
  changed: Omit<EventData<'item.updated'>, 'part_number' | 'version' | 'actor'>,
): NewEvent {
  return {
    type: 'item.updated',
    part_number: partNumber,
    data: { part_number: partNumber, version, actor, ...changed },
  }
}

export function itemDeleted(partNumber: string, version: number, actor: Actor): NewEvent {
  return {
    type: 'item.deleted',
    part_number: partNumber,
    data: { part_number: partNumber, version, actor },
  }
}

/** `version`: the item's, which the new revision has raised. */
export function revisionCreated(
  revision: Pick<Revision, 'part_number' | 'revision_number' | 'comment' | 'file'>,
  version: number,
  actor: Actor,
): NewEvent {
  const { part_number, revision_number, comment, file } = revision
  return {
    type: 'revision.created',
    part_number,
    data: { part_number, revision_number, comment, version, actor, ...(file ? { file } : {}) },
  }
}

export function serverState(data: EventData<'server.state'>): LiveEvent {
  return { type: 'server.state', data }
}

export function streamClosed(reason: EventData<'stream.closed'>['reason']): LiveEvent {
  return { type: 'stream.closed', data: { reason } }
}

export function heartbeat(): LiveEvent {
  return { type: 'heartbeat', data: {} }
}
