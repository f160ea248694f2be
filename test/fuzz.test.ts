import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { multipartBody } from './support/multipart.js'
import { api, startServer, type TestServer } from './support/server.js'

/**
 * Generated requests to every route, with every role (README, "Bad input"): whatever a client
 * sends, the answer is never a 5xx, a 4xx carries `{"error","message"}`, and after a 4xx the
 * database and the event log are exactly as they were. A fixed seed and a bounded number of
 * cases keep the run the same every time.
 */

const SEED = 20261201
const RUNS = 1000

let server: TestServer
let routes: { method: string; url: string }[] = []
/** An admin token the cases never see, for putting the server back to writable. */
let resetToken = ''

/** Every route the server has, read from its own route tree. */
function registeredRoutes(app: TestServer['app']): { method: string; url: string }[] {
  const found: { method: string; url: string }[] = []
  const stack: string[] = []
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([│ ]*)[├└]── (\S+) \(([A-Z, ]+)\)$/.exec(line)
    if (!match) continue
    const depth = (match[1] as string).length / 4
    stack.length = depth
    stack.push(match[2] as string)
    for (const method of (match[3] as string).split(', '))
      found.push({ method, url: stack.join('') })
  }
  return found
}

/** The state a refused request must leave untouched, one text per table. */
async function snapshot(): Promise<Record<string, string>> {
  const tables: Record<string, string> = {
    items: 'SELECT * FROM items ORDER BY part_number',
    revisions: 'SELECT * FROM revisions ORDER BY part_number, revision_number',
    bom: 'SELECT * FROM bom_lines ORDER BY parent, child',
    tokens: 'SELECT id, name, role, token_hash, expires_at FROM api_tokens ORDER BY id',
    events: 'SELECT count(*)::int AS n, max(id)::int AS last FROM events',
    fleet: 'SELECT * FROM fleet_settings',
  }
  const state: Record<string, string> = {}
  for (const [name, sql] of Object.entries(tables)) {
    state[name] = JSON.stringify((await server.app.db.query(sql)).rows)
  }
  return state
}

beforeAll(async () => {
  server = await startServer()
  const editor = server.tokens.editor
  for (const pn of ['P-1', 'P-2']) {
    await api(server, 'POST', '/api/items', {
      token: editor,
      body: { part_number: pn, item_type: 'assembly', properties: { mass: 1 } },
    })
  }
  await api(server, 'POST', '/api/items/P-1/revisions', { token: editor, body: { comment: 'r1' } })
  await api(server, 'POST', '/api/items/P-1/bom', {
    token: editor,
    body: { child: 'P-2', quantity: 2 },
  })
  routes = registeredRoutes(server.app)
  const made = await api(server, 'POST', '/api/admin/tokens', {
    token: server.tokens.admin,
    body: { name: 'fuzz-reset', role: 'admin' },
  })
  resetToken = made.body.token
})
afterAll(async () => {
  await server?.close()
})

/** Text a client might put anywhere: plain, hostile, huge, or not text at all. */
const hostileText = fc.oneof(
  { arbitrary: fc.string(), weight: 1 },
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }), weight: 1 },
  {
    arbitrary: fc.string().map((text) => `${text}\u0000${text}`),
    weight: 1,
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'P-1',
      'P-2',
      'NOPE-1',
      '',
      '\u0000',
      '1e309',
      '1e30',
      'Infinity',
      '-1',
      '0',
      '9223372036854775808',
      '../../etc/passwd',
      '%00',
      '__proto__',
      'x'.repeat(5000),
    ),
  },
)

/** A valid body for each route that takes one: a case spoils one part of it. */
const VALID_BODIES: Record<string, Record<string, unknown>> = {
  'POST /api/items': { part_number: 'F-1', item_type: 'part', description: 'x', properties: {} },
  'PATCH /api/items/:pn': { description: 'x', properties: { a: 1 } },
  'POST /api/items/:pn/revisions': { comment: 'x', properties: { a: 1 } },
  'POST /api/items/:pn/bom': { child: 'P-2', quantity: 1 },
  'PUT /api/items/:pn/bom/:child': { quantity: 1 },
  'POST /api/admin/tokens': { name: 'x', role: 'viewer' },
}

/** Stands for a number JSON cannot write but a client can send: replaced in the text. */
const HUGE = '__1e309__'

const hostileValue = fc.oneof(
  hostileText,
  fc.jsonValue({ maxDepth: 3 }),
  fc.constant(HUGE),
  fc.integer({ min: 2, max: 60 }).map((depth) => JSON.parse('['.repeat(depth) + ']'.repeat(depth))),
)

/** The JSON text of a route's valid body with one field or one property spoiled. */
const spoiledBody = fc.record({
  field: fc.nat(),
  value: hostileValue,
  intoProperties: fc.boolean(),
  propertyName: hostileText,
})

const requestCase = fc.record({
  // Half of the cases go to the routes that take a body, where most can go wrong.
  route: fc.oneof(
    fc.nat().map((n) => ({ withBody: true, n })),
    fc.nat().map((n) => ({ withBody: false, n })),
  ),
  // Mostly roles that get past auth, so that the route's own checks are what is tried.
  role: fc.oneof(
    { arbitrary: fc.constantFrom('editor', 'admin'), weight: 4 },
    { arbitrary: fc.constantFrom('anonymous', 'viewer', 'bogus'), weight: 1 },
  ),
  // Mostly part numbers and ids that exist, so that bodies and queries reach the domain.
  params: fc.array(
    fc.oneof(
      { arbitrary: fc.constantFrom('P-1', 'P-2', '1'), weight: 3 },
      { arbitrary: hostileText, weight: 1 },
    ),
    { minLength: 4, maxLength: 4 },
  ),
  query: fc.oneof(
    fc
      .tuple(
        fc.constantFrom('q', 'limit', 'cursor', 'item_type', 'dry_run', 'types', 'part_number'),
        hostileText,
      )
      .map(([key, value]) => ({ [key]: value })),
    fc.dictionary(fc.string({ maxLength: 8 }), hostileText, { maxKeys: 3 }),
  ),
  body: fc.oneof(
    { arbitrary: spoiledBody.map((spoil) => ({ kind: 'spoiled' as const, spoil })), weight: 4 },
    {
      arbitrary: fc.jsonValue({ maxDepth: 4 }).map((value) => ({
        kind: 'raw' as const,
        type: 'application/json',
        text: JSON.stringify(value) ?? 'null',
      })),
      weight: 1,
    },
    {
      arbitrary: fc
        .string()
        .map((text) => ({ kind: 'raw' as const, type: 'application/json', text })),
      weight: 1,
    },
    {
      arbitrary: fc.string().map((text) => ({
        kind: 'raw' as const,
        type: 'text/csv',
        text: `part_number,description,item_type\n${text}`,
      })),
      weight: 1,
    },
    {
      arbitrary: fc.string().map((text) => ({
        kind: 'raw' as const,
        type: 'multipart/form-data; boundary=x',
        text,
      })),
      weight: 1,
    },
    {
      arbitrary: fc.tuple(hostileText, fc.string()).map(([comment, value]) => {
        const { body, contentType } = multipartBody([
          { name: 'comment', value: comment },
          {
            name: 'file',
            filename: value || 'f',
            contentType: 'model/step',
            data: Buffer.from(value),
          },
        ])
        return { kind: 'raw' as const, type: contentType, text: body.toString('latin1') }
      }),
      weight: 1,
    },
  ),
  ifMatch: fc.option(hostileText, { nil: undefined }),
})

type RequestCase = typeof requestCase extends fc.Arbitrary<infer C> ? C : never

/** The body a case sends to `route`, as content type and text; undefined for none. */
function bodyFor(
  route: { method: string; url: string },
  body: RequestCase['body'],
): { type: string; text: string } | undefined {
  if (route.method === 'GET' || route.method === 'HEAD') return undefined
  if (body.kind === 'raw') return body
  const valid = VALID_BODIES[`${route.method} ${route.url}`]
  if (!valid) return undefined
  const spoiled: Record<string, unknown> = structuredClone(valid)
  const fields = Object.keys(spoiled)
  if (body.spoil.intoProperties) {
    spoiled.properties = { [body.spoil.propertyName]: body.spoil.value }
  } else {
    spoiled[fields[body.spoil.field % fields.length] as string] = body.spoil.value
  }
  return {
    type: 'application/json',
    text: JSON.stringify(spoiled).replaceAll(`"${HUGE}"`, '1e309'),
  }
}

describe('generated requests to every route', () => {
  it('finds every route of the server', () => {
    expect(routes.length).toBeGreaterThanOrEqual(30)
    expect(routes).toContainEqual({ method: 'DELETE', url: '/api/items/:pn/bom/:child' })
  })

  it('never answer 5xx, always give a 4xx its error body, and change nothing when refused', async () => {
    const tokens: Record<string, string | undefined> = {
      ...server.tokens,
      anonymous: undefined,
      bogus: `silo_${'B'.repeat(43)}`,
    }
    await fc.assert(
      fc.asyncProperty(requestCase, async (c) => {
        const pool = c.route.withBody
          ? routes.filter((r) => `${r.method} ${r.url}` in VALID_BODIES)
          : routes
        const route = pool[c.route.n % pool.length] as { method: string; url: string }
        let param = 0
        const path = route.url.replace(/:[a-z]+/g, () =>
          encodeURIComponent(c.params[param++] as string),
        )
        const query = new URLSearchParams(c.query).toString()
        const headers: Record<string, string> = {}
        const token = tokens[c.role]
        if (token) headers.authorization = `Bearer ${token}`
        if (c.ifMatch !== undefined) headers['if-match'] = c.ifMatch.replace(/[^\x20-\x7e]/g, '')
        const body = bodyFor(route, c.body)
        if (body) headers['content-type'] = body.type
        const before = await snapshot()
        const res = await fetch(`${server.url}${path}${query ? `?${query}` : ''}`, {
          method: route.method,
          headers,
          body: body ? Buffer.from(body.text, 'latin1') : undefined,
          // The event stream answers 200 and stays open: its status is all there is to check.
          signal: AbortSignal.timeout(10_000),
        })
        const isStream = (res.headers.get('content-type') ?? '').startsWith('text/event-stream')
        const text = isStream ? '' : await res.text()
        if (isStream) await res.body?.cancel()
        const what = `${route.method} ${path}?${query} as ${c.role}: ${res.status} ${text.slice(0, 200)}`
        expect(res.status, what).toBeLessThan(500)
        // A generated body may switch the fleet read-only, which is an answer, not an error;
        // the next case starts writable again.
        if (server.app.modes.isReadOnly) {
          const reset = await api(server, 'PUT', '/api/admin/mode', {
            token: resetToken,
            body: { read_only: false },
          })
          expect(reset.status, what).toBe(200)
        }
        if (res.status >= 400) {
          if (route.method !== 'HEAD') {
            expect(JSON.parse(text), what).toEqual({
              ...JSON.parse(text),
              error: expect.any(String),
              message: expect.any(String),
            })
          }
          expect(await snapshot(), what).toEqual(before)
        }
      }),
      { seed: SEED, numRuns: RUNS },
    )
  })
})
