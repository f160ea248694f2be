import { compileErrors, validate } from '@readme/openapi-parser'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EVENT_TYPES, eventCatalogue } from '../src/events/catalogue.js'
import { operationExtras } from '../src/openapi/operationExtras.js'
import { chromiumMissing, launchChromium } from './support/browser.js'
import { registeredRoutes } from './support/registeredRoutes.js'
import { api, startServer, type TestServer } from './support/server.js'

/**
 * The API description (README, "API description"): generated from the routes, valid OpenAPI 3.1,
 * complete, and true to what the server does.
 */

const WRITE_METHODS = ['post', 'put', 'patch', 'delete']
/** The write routes that work in read-only mode (the switch itself, and revoking a token). */
const WRITES_IN_READ_ONLY = [
  'put /api/admin/mode',
  'delete /api/admin/tokens/{id}',
  'post /api/session',
  'delete /api/session',
]

interface Operation {
  security?: Record<string, string[]>[]
  parameters?: { name: string; in: string }[]
  responses: Record<string, { headers?: Record<string, unknown>; content?: any }>
  'x-silo-role': string
}

let server: TestServer
let doc: any

/** Every operation of the document as `method path`. */
function operations(): { key: string; method: string; path: string; op: Operation }[] {
  return Object.entries(doc.paths as Record<string, Record<string, Operation>>).flatMap(
    ([path, item]) =>
      Object.entries(item).map(([method, op]) => ({ key: `${method} ${path}`, method, path, op })),
  )
}

/** A URL of the running server for a documented path, with its parameters filled in. */
const concrete = (path: string) => path.replace(/\{[^}]+\}/g, 'X-1')

const toOpenApiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}')

/** Every Schema Object in the document, by where it is: parameters, bodies, headers. */
function schemasIn(value: unknown, at = ''): [string, unknown][] {
  if (!value || typeof value !== 'object') return []
  return Object.entries(value).flatMap(([key, inner]) =>
    key === 'schema' ? [[`${at}/schema`, inner]] : schemasIn(inner, `${at}/${key}`),
  )
}

beforeAll(async () => {
  server = await startServer()
  const res = await api(server, 'GET', '/api/openapi.json')
  expect(res.status).toBe(200)
  doc = res.body
})
afterAll(async () => {
  await server?.close()
})

describe('GET /api/openapi.json', () => {
  it('is an OpenAPI 3.1 document that a validator accepts', async () => {
    expect(doc.openapi).toBe('3.1.0')
    // The validator dereferences in place; the tests after it read the document as served.
    const result = await validate(structuredClone(doc))
    expect(result.valid, compileErrors(result)).toBe(true)
    expect(result.warnings).toEqual([])
  })

  it('holds only schemas of its JSON Schema dialect and names only declared security schemes', () => {
    // The OpenAPI 3.1 meta-schema leaves Schema Objects to their dialect (2020-12) and does not
    // look up security requirement names, so both are checked here.
    const ajv = new Ajv2020({ strict: false })
    const schemas = [
      ...schemasIn(doc.paths, '/paths'),
      ...Object.entries(doc.components.schemas ?? {}),
    ]
    expect(schemas.length).toBeGreaterThan(50)
    for (const [where, schema] of schemas) {
      expect(ajv.validateSchema(schema as object), `${where}: ${ajv.errorsText()}`).toBe(true)
    }
    const declared = Object.keys(doc.components.securitySchemes)
    for (const { key, op } of operations()) {
      for (const requirement of op.security ?? []) {
        for (const name of Object.keys(requirement)) expect(declared, key).toContain(name)
      }
    }
  })

  it('describes every route the server registered, with its methods, and nothing else', () => {
    // Fastify adds a HEAD route for every GET; the reference UI's and the console's own files
    // are not API.
    const registered = registeredRoutes(server.app)
      .filter((r) => r.method !== 'HEAD' && !/^\/(docs|assets)(\/|\*|$)|^\/$/.test(r.url))
      .map((r) => `${r.method.toLowerCase()} ${toOpenApiPath(r.url)}`)
    expect(registered.length).toBeGreaterThan(20)
    expect(
      operations()
        .map((o) => o.key)
        .sort(),
    ).toEqual([...new Set(registered)].sort())
  })

  it('every table entry of extras names a registered route', () => {
    const registered = new Set(registeredRoutes(server.app).map((r) => `${r.method} ${r.url}`))
    for (const key of Object.keys(operationExtras)) expect(registered).toContain(key)
  })

  it('lists the role as the security of every operation that needs a token, as the server checks it', async () => {
    for (const { key, method, path, op } of operations()) {
      const anonymous = await api(server, method.toUpperCase(), concrete(path))
      if (op.security?.length === 0) {
        expect(anonymous.status, key).not.toBe(401)
        expect(op['x-silo-role'], key).toBe('none')
        continue
      }
      const role = op['x-silo-role']
      expect(anonymous.status, key).toBe(401)
      expect(op.security?.[0], key).toEqual({ bearer: [role] })
      expect(op.responses[401]?.headers, key).toHaveProperty('WWW-Authenticate')
      if (role === 'viewer') continue
      // A role below the one listed is refused before anything is read.
      const below = await api(server, method.toUpperCase(), concrete(path), {
        token: server.tokens.viewer,
      })
      expect(below.status, key).toBe(403)
      expect(op.responses[403], key).toBeDefined()
    }
  })

  it('leaves the probes and the description itself public', () => {
    const publicOps = operations()
      .filter((o) => o.op.security?.length === 0)
      .map((o) => o.key)
    expect(publicOps.sort()).toEqual([
      'get /api/openapi.json',
      'get /health',
      'get /ready',
      'post /api/session',
    ])
  })

  it('gives every write route its read-only refusal with Retry-After', () => {
    const writes = operations().filter((o) => WRITE_METHODS.includes(o.method))
    expect(writes.length).toBeGreaterThan(8)
    for (const { key, op } of writes) {
      const refusal = op.responses[503]
      // Every route may answer 503 while the server shuts down; these never for read-only.
      const codes = refusal?.content?.['application/json']?.schema?.properties?.error?.examples
      if (WRITES_IN_READ_ONLY.includes(key)) {
        expect(codes ?? [], key).not.toContain('server_read_only')
        continue
      }
      expect(refusal?.headers, key).toHaveProperty('Retry-After')
      expect(refusal?.content['application/json'].schema.properties.error.examples, key).toContain(
        'server_read_only',
      )
    }
  })

  it("describes an item's ETag and the If-Match its writes take", () => {
    const item = doc.paths['/api/items/{pn}'] as Record<string, Operation>
    expect(item.get?.responses[200]?.headers).toHaveProperty('ETag')
    for (const method of ['patch', 'delete']) {
      const op = item[method] as Operation
      expect(
        op.parameters?.map((p) => `${p.in} ${p.name}`),
        method,
      ).toContain('header if-match')
      expect(op.responses[412], method).toBeDefined()
    }
  })

  it("describes the downloads' conditional headers and answers", () => {
    const download = doc.paths['/api/items/{pn}/revisions/{n}/file'].get as Operation
    const headers = download.parameters?.filter((p) => p.in === 'header').map((p) => p.name)
    expect(headers).toEqual(['If-None-Match', 'Range', 'If-Range'])
    expect(download.responses[200]?.headers).toHaveProperty('ETag')
    expect(download.responses[206]?.headers).toHaveProperty('Content-Range')
    expect(download.responses[304]).toBeDefined()
    expect(download.responses[416]?.headers).toHaveProperty('Content-Range')
    // The route's own schema still says what a 416 body is.
    expect(download.responses[416]?.content['application/json'].schema.required).toEqual([
      'error',
      'message',
    ])
  })

  it('describes the event stream: token in the query too, replay, and the stream cap', () => {
    const stream = doc.paths['/api/events'].get as Operation
    expect(stream.security).toEqual([
      { bearer: ['viewer'] },
      { session: ['viewer'] },
      { queryToken: ['viewer'] },
    ])
    expect(stream.parameters?.map((p) => `${p.in} ${p.name}`)).toEqual(
      expect.arrayContaining(['header Last-Event-ID', 'query types', 'query part_number']),
    )
    expect(stream.responses[200]?.content).toHaveProperty('text/event-stream')
    expect(stream.responses[429]?.headers).toHaveProperty('Retry-After')
  })

  it('describes each event type of the catalogue with its data', () => {
    const stream = doc.paths['/api/events'].get as Operation
    const events: any[] = stream.responses[200]?.content['text/event-stream'].schema.oneOf
    expect(events.map((e) => e.title)).toEqual([...EVENT_TYPES])
    for (const event of events) {
      const type = event.title as (typeof EVENT_TYPES)[number]
      const definition = eventCatalogue[type]
      expect(event.properties.event.enum ?? [event.properties.event.const], type).toEqual([type])
      expect(Object.keys(event.properties.data.properties ?? {}), type).toEqual(
        Object.keys((definition.data as { properties?: object }).properties ?? {}),
      )
      expect(event.required.includes('id'), type).toBe(definition.stored)
    }
  })
})

describe('/docs', () => {
  it('answers with a policy that lets the page load nothing from elsewhere', async () => {
    const res = await fetch(`${server.url}/docs`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'")
  })

  it("sends the UI package's own index file to /docs/, whatever its query", async () => {
    const res = await fetch(`${server.url}/docs/static/index.html?x=1`, { redirect: 'manual' })
    expect(res.status).toBe(302)
    expect(res.headers.get('location')).toBe('/docs/')
  })

  it.skipIf(chromiumMissing)(
    'renders every operation in a browser that can reach nothing but the server',
    async () => {
      const browser = await launchChromium()
      try {
        const page = await browser.newPage()
        const elsewhere: string[] = []
        const problems: string[] = []
        // Given a browser whose network ends at the server
        await page.route('**/*', (route) => {
          const url = route.request().url()
          if (url.startsWith(`${server.url}/`)) return route.continue()
          elsewhere.push(url)
          return route.abort()
        })
        page.on('console', (m) => {
          if (m.type() === 'error') problems.push(m.text())
        })
        page.on('pageerror', (err) => problems.push(err.message))
        // When it opens the reference UI
        await page.goto(`${server.url}/docs`)
        // Then every operation of the description is on the page, and nothing was refused
        const count = operations().length
        await page
          .locator('.opblock')
          .nth(count - 1)
          .waitFor()
        expect(await page.locator('.opblock').count()).toBe(count)
        const paths = await page.locator('.opblock-summary-path').allTextContents()
        expect(paths.map((p) => p.replace(/\u200b/g, ''))).toContain(
          '/api/items/{pn}/revisions/{n}/file',
        )
        expect(elsewhere).toEqual([])
        expect(problems).toEqual([])
      } finally {
        await browser.close()
      }
    },
  )
})
