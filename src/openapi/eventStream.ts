import type { EventDefinition } from '../events/catalogue.js'
import type { OperationExtras } from './operationExtras.js'
import { errorBody, retryAfterHeader } from './responses.js'

const FRAMING = `A Server-Sent Events stream (README, "The event stream"). It opens with \`retry: <ms>\` and a
\`server.state\` event holding the current mode, then sends each event as

    id: <integer>
    event: <type>
    data: <one-line JSON>
    <blank line>

Stored events (and \`stream.reset\`) carry an \`id:\`; the others do not. A client that reconnects
with \`Last-Event-ID\` (EventSource does so itself) gets every stored event after that id, in order,
then the live ones. Payloads may hold fields not listed here: clients ignore what they do not know.
The schema below is one event: its \`event\` name and its \`data\`, one of the types listed.`

/** One event as the stream frames it: the SSE fields, with `data` parsed. */
function eventSchema(type: string, definition: EventDefinition) {
  return {
    type: 'object',
    title: type,
    description: `${definition.description}${definition.stored ? ' Stored: replayable by id.' : ' Live only, never stored.'}`,
    required: [...(definition.stored ? ['id'] : []), 'event', 'data'],
    properties: {
      id: { type: 'integer', minimum: 1, description: 'The `id:` field.' },
      event: { type: 'string', const: type, description: 'The `event:` field.' },
      data: { ...definition.data, description: 'The `data:` field, as JSON.' },
    },
    'x-silo-stored': definition.stored,
  }
}

/**
 * GET /api/events as OpenAPI describes it: the route reads its query leniently (it must answer
 * 200 whatever a browser's EventSource sends), so the parameters are declared here, and the
 * `text/event-stream` body is one of the catalogue's events.
 */
export function eventStreamExtras(catalogue: Record<string, EventDefinition>): OperationExtras {
  const types = Object.keys(catalogue)
  return {
    query: {
      types: {
        type: 'string',
        description: `Comma-separated event types to receive (${types.join(', ')}); all when absent.`,
      },
      part_number: { type: 'string', description: 'Only events about this item.' },
      last_event_id: {
        type: 'integer',
        description: 'As the Last-Event-ID header, for clients that cannot set headers.',
      },
    },
    requestHeaders: {
      'Last-Event-ID': {
        type: 'string',
        description:
          'Replay the stored events after this id. One older than the retained history, or newer ' +
          'than the newest, gets `stream.reset` first; a malformed one counts as absent.',
      },
    },
    responses: {
      200: {
        description: 'The event stream, open until the server ends it.',
        content: {
          'text/event-stream': {
            schema: {
              description: FRAMING,
              oneOf: types.map((type) => eventSchema(type, catalogue[type] as EventDefinition)),
            },
          },
        },
        headers: {
          'Cache-Control': { type: 'string', enum: ['no-cache'] },
          'X-Accel-Buffering': {
            type: 'string',
            enum: ['no'],
            description: 'Tells nginx not to buffer the stream.',
          },
        },
      },
      429: {
        ...errorBody(
          'Too Many Requests: `too_many_streams`, this token or this server holds the most event ' +
            'streams allowed (events.max_streams_per_token, events.max_streams). Sent before any ' +
            'stream byte; try again after Retry-After.',
          ['too_many_streams'],
        ),
        headers: { 'Retry-After': retryAfterHeader },
      },
    },
  }
}
