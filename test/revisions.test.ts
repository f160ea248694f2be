import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readdirSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { Client } from 'minio'
import { afterEach, describe, expect, it } from 'vitest'
import { type CuttingProxy, type S3Server, startCuttingProxy, startS3 } from './support/s3.js'
import { eventually } from './support/eventually.js'
import { multipartBody, postMultipart } from './support/multipart.js'
import { actorNamed, api, startServer, type TestServer } from './support/server.js'
import { openGreetedStream, closeStreams } from './support/sseClient.js'

/**
 * Revisions and their files (README "Revisions and files"): numbering, streaming uploads with size, sha256 and
 * content type, downloads with ETag and Range, limits, and failed uploads that leave nothing
 * behind — in the database, in storage, or on the event stream.
 */

let server: TestServer | undefined
let s3: S3Server | undefined
let proxy: CuttingProxy | undefined

afterEach(async () => {
  closeStreams()
  await server?.close()
  await proxy?.close()
  await s3?.close()
  server = s3 = proxy = undefined
})

async function start(overrides: Record<string, unknown> = {}): Promise<TestServer> {
  server = await startServer({ overrides })
  return server
}

async function createItem(s: TestServer, pn = 'P-1') {
  const res = await api(s, 'POST', '/api/items', {
    token: s.tokens.editor,
    body: { part_number: pn, item_type: 'part' },
  })
  expect(res.status).toBe(201)
}

const subscribe = (s: TestServer) => openGreetedStream(s)

const revisionsUrl = (s: TestServer, pn = 'P-1') => `${s.url}/api/items/${pn}/revisions`

function upload(s: TestServer, data: Buffer, extra: { comment?: string; pn?: string } = {}) {
  return postMultipart(revisionsUrl(s, extra.pn), s.tokens.editor, [
    ...(extra.comment === undefined ? [] : [{ name: 'comment', value: extra.comment }]),
    { name: 'file', filename: 'bracket.step', contentType: 'model/step', data },
  ])
}

async function download(s: TestServer, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${s.url}${path}`, {
    headers: { authorization: `Bearer ${s.tokens.viewer}`, ...headers },
  })
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) }
}

/** Every file under the filesystem storage root, temporary ones included. */
function storedFiles(s: TestServer): string[] {
  const root = join(s.dataDir, 'files')
  if (!existsSync(root)) return []
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(root.length + 1))
}

async function dbRevisions(s: TestServer) {
  return (
    await s.app.db.query<{ n: number; status: string }>(
      'SELECT revision_number AS n, status FROM revisions ORDER BY part_number, revision_number',
    )
  ).rows
}

async function eventCount(s: TestServer): Promise<number> {
  const { rows } = await s.app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM events')
  return Number(rows[0]?.n)
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex')

describe('revisions without files', () => {
  it('numbers revisions from 1, lists them in order and announces each', async () => {
    const s = await start()
    await createItem(s)
    const sse = await subscribe(s)
    const first = await api(s, 'POST', '/api/items/P-1/revisions', {
      token: s.tokens.editor,
      body: { comment: 'first cut', properties: { material: 'AlMg3' } },
    })
    expect(first.status).toBe(201)
    expect(first.body).toMatchObject({
      part_number: 'P-1',
      revision_number: 1,
      comment: 'first cut',
      properties: { material: 'AlMg3' },
      file: null,
    })
    const second = await api(s, 'POST', '/api/items/P-1/revisions', {
      token: s.tokens.editor,
      body: {},
    })
    expect(second.body).toMatchObject({ revision_number: 2, comment: '' })

    const list = await api(s, 'GET', '/api/items/P-1/revisions', { token: s.tokens.viewer })
    expect(list.status).toBe(200)
    expect(list.body.revisions.map((r: any) => r.revision_number)).toEqual([1, 2])
    const one = await api(s, 'GET', '/api/items/P-1/revisions/1', { token: s.tokens.viewer })
    expect(one.body).toEqual(first.body)

    await sse.waitFor((events) => events.filter((e) => e.type === 'revision.created').length === 2)
    const editor = actorNamed('test-editor')
    expect(sse.events.filter((e) => e.type === 'revision.created').map((e) => e.data)).toEqual([
      { part_number: 'P-1', revision_number: 1, comment: 'first cut', version: 2, actor: editor },
      { part_number: 'P-1', revision_number: 2, comment: '', version: 3, actor: editor },
    ])
  })

  it('concurrent writers get distinct consecutive numbers', async () => {
    const s = await start()
    await createItem(s)
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        i % 2 === 0
          ? api(s, 'POST', '/api/items/P-1/revisions', {
              token: s.tokens.editor,
              body: { comment: `json ${i}` },
            })
          : upload(s, randomBytes(1000), { comment: `file ${i}` }),
      ),
    )
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(201))
    expect(results.map((r) => r.body.revision_number).sort((a, b) => a - b)).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8,
    ])
  })

  it('refuses bad input with a 4xx and changes nothing', async () => {
    const s = await start()
    await createItem(s)
    const before = await eventCount(s)
    const cases: [string, string, Record<string, unknown>, number][] = [
      ['POST', '/api/items/P-1/revisions', { comment: 5 }, 400],
      ['POST', '/api/items/P-1/revisions', { comment: 'x', extra: 1 }, 400],
      ['POST', '/api/items/P-1/revisions', { properties: [] }, 400],
      ['POST', '/api/items/P-1/revisions', { comment: 'x'.repeat(5000) }, 400],
      ['POST', '/api/items/P-1/revisions', { comment: 'a\u0000b' }, 400],
      ['POST', '/api/items/P-1/revisions', { properties: { 'k\u0000': 1 } }, 400],
      ['POST', '/api/items/NOPE/revisions', { comment: 'x' }, 404],
      ['POST', '/api/items/bad%20pn/revisions', { comment: 'x' }, 400],
    ]
    for (const [method, path, body, status] of cases) {
      const res = await api(s, method, path, { token: s.tokens.editor, body })
      expect(res.status, `${path} ${JSON.stringify(body)}`).toBe(status)
      expect(Object.keys(res.body).sort()).toEqual(['error', 'message'])
    }
    const broken = await api(s, 'POST', '/api/items/P-1/revisions', {
      token: s.tokens.editor,
      rawBody: '{"comment": ',
    })
    expect(broken.status).toBe(400)
    expect(broken.body.error).toBe('invalid_json')
    for (const path of ['/api/items/P-1/revisions/0', '/api/items/P-1/revisions/x']) {
      expect((await api(s, 'GET', path, { token: s.tokens.viewer })).status).toBe(400)
    }
    expect(
      (await api(s, 'GET', '/api/items/P-1/revisions/1', { token: s.tokens.viewer })).status,
    ).toBe(404)
    expect(
      (await api(s, 'GET', '/api/items/NOPE/revisions', { token: s.tokens.viewer })).status,
    ).toBe(404)
    expect(await dbRevisions(s)).toEqual([])
    expect(await eventCount(s)).toBe(before)
  })
})

describe('revisions with files on filesystem storage', () => {
  it('stores the exact bytes with size, sha256 and content type, and announces the file', async () => {
    const s = await start()
    await createItem(s)
    const sse = await subscribe(s)
    const data = randomBytes(300_000)
    const res = await postMultipart(revisionsUrl(s), s.tokens.editor, [
      { name: 'file', filename: 'C:\\work\\bracket ø.step', contentType: 'model/step', data },
      // Fields may follow the file.
      { name: 'comment', value: 'with a file' },
      { name: 'properties', value: '{"cad":"FreeCAD 1.0"}' },
    ])
    expect(res.status).toBe(201)
    const file = {
      name: 'bracket ø.step',
      size: 300_000,
      sha256: sha256(data),
      content_type: 'model/step',
    }
    expect(res.body).toMatchObject({
      revision_number: 1,
      comment: 'with a file',
      properties: { cad: 'FreeCAD 1.0' },
      file,
    })
    expect(storedFiles(s)).toEqual(['items/P-1/rev/1/bracket ø.step'])
    const event = await sse.waitForEvent('revision.created')
    expect(event.data).toEqual({
      part_number: 'P-1',
      revision_number: 1,
      comment: 'with a file',
      version: 2,
      actor: actorNamed('test-editor'),
      file,
    })

    const got = await download(s, '/api/items/P-1/revisions/1/file')
    expect(got.status).toBe(200)
    expect(got.body.equals(data)).toBe(true)
    expect(got.headers.get('content-type')).toBe('model/step')
    expect(got.headers.get('etag')).toBe(`"${sha256(data)}"`)
    expect(got.headers.get('accept-ranges')).toBe('bytes')
    expect(got.headers.get('content-disposition')).toBe(
      `attachment; filename="bracket ?.step"; filename*=UTF-8''bracket%20%C3%B8.step`,
    )
    // The uploader chose the content type: browsers must not sniff or render it
    expect(got.headers.get('x-content-type-options')).toBe('nosniff')
    expect(got.headers.get('content-security-policy')).toBe("default-src 'none'; sandbox")
  })

  it("encodes every character RFC 8187 reserves in the download's file name", async () => {
    // Given a file whose name holds non-ASCII letters and ' ( ) *
    const s = await start()
    await createItem(s)
    const res = await postMultipart(revisionsUrl(s), s.tokens.editor, [
      {
        name: 'file',
        filename: "Ø it's (v2)*.step",
        contentType: 'model/step',
        data: randomBytes(10),
      },
    ])
    expect(res.status).toBe(201)
    // When it is downloaded
    const got = await download(s, '/api/items/P-1/revisions/1/file')
    // Then the extended name is fully percent-encoded, and the plain one is a quoted fallback
    expect(got.headers.get('content-disposition')).toBe(
      `attachment; filename="? it's (v2)*.step"; filename*=UTF-8''%C3%98%20it%27s%20%28v2%29%2A.step`,
    )
  })

  it('honours Range, If-Range and If-None-Match', async () => {
    const s = await start()
    await createItem(s)
    const data = randomBytes(10_000)
    expect((await upload(s, data)).status).toBe(201)
    const path = '/api/items/P-1/revisions/1/file'
    const etag = `"${sha256(data)}"`

    const part = await download(s, path, { range: 'bytes=100-199' })
    expect(part.status).toBe(206)
    expect(part.headers.get('content-range')).toBe('bytes 100-199/10000')
    expect(part.body.equals(data.subarray(100, 200))).toBe(true)

    const tail = await download(s, path, { range: 'bytes=-10' })
    expect(tail.status).toBe(206)
    expect(tail.body.equals(data.subarray(9990))).toBe(true)

    const beyond = await download(s, path, { range: 'bytes=20000-' })
    expect(beyond.status).toBe(416)
    expect(beyond.headers.get('content-range')).toBe('bytes */10000')
    expect(JSON.parse(beyond.body.toString()).error).toBe('range_not_satisfiable')

    const stale = await download(s, path, { range: 'bytes=0-9', 'if-range': '"other"' })
    expect(stale.status).toBe(200)
    expect(stale.body.equals(data)).toBe(true)
    const fresh = await download(s, path, { range: 'bytes=0-9', 'if-range': etag })
    expect(fresh.status).toBe(206)

    const cached = await download(s, path, { 'if-none-match': etag })
    expect(cached.status).toBe(304)
    expect(cached.body.length).toBe(0)
    // If-None-Match compares weakly and takes `*` and lists (RFC 9110 13.1.2)
    for (const tags of ['*', `W/${etag}`, `"other", ${etag}`, `"other",W/${etag}`]) {
      expect((await download(s, path, { 'if-none-match': tags })).status, tags).toBe(304)
    }
    for (const tags of ['"other"', `"other", W/"x"`]) {
      expect((await download(s, path, { 'if-none-match': tags })).status, tags).toBe(200)
    }
  })

  it('answers 404 for a revision without a file and for a missing revision', async () => {
    const s = await start()
    await createItem(s)
    await api(s, 'POST', '/api/items/P-1/revisions', { token: s.tokens.editor, body: {} })
    const noFile = await download(s, '/api/items/P-1/revisions/1/file')
    expect(noFile.status).toBe(404)
    expect(JSON.parse(noFile.body.toString()).error).toBe('not_found')
    expect((await download(s, '/api/items/P-1/revisions/2/file')).status).toBe(404)
  })

  it('refuses bad multipart uploads before storing anything, or removes what was stored', async () => {
    const s = await start()
    await createItem(s)
    const before = await eventCount(s)
    const file = { name: 'file', filename: 'a.step', data: randomBytes(1000) }
    const cases: [string, Parameters<typeof postMultipart>[2]][] = [
      ['unknown field', [{ name: 'colour', value: 'red' }, file]],
      ['properties not JSON', [{ name: 'properties', value: '{nope' }, file]],
      ['properties not an object', [file, { name: 'properties', value: '[1,2]' }]],
      ['comment twice', [{ name: 'comment', value: 'a' }, { name: 'comment', value: 'b' }, file]],
      ['comment too long after the file', [file, { name: 'comment', value: 'x'.repeat(5000) }]],
      ['no file part', [{ name: 'comment', value: 'a' }]],
      ['file part misnamed', [{ ...file, name: 'upload' }]],
      ['no file name', [{ ...file, filename: '..' }]],
      ['bad content type', [{ ...file, contentType: 'not a type' }]],
      ['NUL in the comment', [{ name: 'comment', value: 'a\u0000b' }, file]],
      [
        'NUL in a property after the file',
        [file, { name: 'properties', value: '{"a":"\\u0000"}' }],
      ],
      ['a non-finite property', [{ name: 'properties', value: '{"a":1e309}' }, file]],
    ]
    for (const [what, parts] of cases) {
      const res = await postMultipart(revisionsUrl(s), s.tokens.editor, parts)
      expect(res.status, what).toBe(400)
      expect(Object.keys(res.body).sort(), what).toEqual(['error', 'message'])
    }
    // Bodies the multipart parser cannot read at all: no boundary, cut short
    const malformed: [string, string, string][] = [
      ['no boundary', 'multipart/form-data', '--XX\r\n'],
      [
        'cut short in the file',
        'multipart/form-data; boundary=XX',
        '--XX\r\nContent-Disposition: form-data; name="file"; filename="a.step"\r\n\r\nabc',
      ],
    ]
    for (const [what, contentType, body] of malformed) {
      const res = await fetch(revisionsUrl(s), {
        method: 'POST',
        headers: { authorization: `Bearer ${s.tokens.editor}`, 'content-type': contentType },
        body,
      })
      expect(res.status, what).toBe(400)
      const answer = (await res.json()) as Record<string, unknown>
      expect(answer.message, what).toMatch(/^malformed multipart body: /)
    }
    expect(await dbRevisions(s)).toEqual([])
    expect(storedFiles(s)).toEqual([])
    expect(await eventCount(s)).toBe(before)
    // No number was used up by the refusals.
    expect((await upload(s, randomBytes(10))).body.revision_number).toBe(1)
  })

  it('answers 413 past storage.max_file_size and leaves nothing behind', async () => {
    const s = await start({ storage: { max_file_size: 64 * 1024 } })
    await createItem(s)
    const before = await eventCount(s)
    const res = await upload(s, randomBytes(200 * 1024))
    expect(res.status, JSON.stringify(res.body)).toBe(413)
    expect(res.body.error).toBe('payload_too_large')
    expect(await dbRevisions(s)).toEqual([])
    expect(storedFiles(s)).toEqual([])
    expect(await eventCount(s)).toBe(before)
    const exact = await upload(s, randomBytes(64 * 1024))
    expect(exact.status).toBe(201)
    expect(exact.body.revision_number).toBe(1)
  })

  it('a client that vanishes mid-upload leaves no revision, no file and no event', async () => {
    const s = await start()
    await createItem(s)
    const before = await eventCount(s)
    const { body, contentType } = multipartBody([
      { name: 'file', filename: 'big.step', data: randomBytes(4 * 1024 * 1024) },
    ])
    const socket = connect(s.port, '127.0.0.1')
    socket.on('error', () => {})
    socket.write(
      `POST /api/items/P-1/revisions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.tokens.editor}\r\n` +
        `Content-Type: ${contentType}\r\nContent-Length: ${body.length}\r\n\r\n`,
    )
    socket.write(body.subarray(0, 1024 * 1024))
    // The upload is streaming into storage once its temporary file holds bytes.
    await eventually(
      () => storedFiles(s).some((f) => f.includes('.upload-')),
      'the upload to start',
      {
        intervalMs: 1,
      },
    )
    // No number is taken while the file is only staged
    expect(await dbRevisions(s)).toEqual([])
    socket.destroy()
    await eventually(() => storedFiles(s).length === 0, 'the staged file to go')
    expect(await dbRevisions(s)).toEqual([])
    expect(await eventCount(s)).toBe(before)
    expect((await upload(s, randomBytes(10))).body.revision_number).toBe(1)
  })

  it('deleting an item removes its revisions and their files', async () => {
    const s = await start()
    await createItem(s)
    await createItem(s, 'P-2')
    await upload(s, randomBytes(100))
    await upload(s, randomBytes(100))
    await upload(s, randomBytes(100), { pn: 'P-2' })
    expect(storedFiles(s)).toHaveLength(3)
    expect((await api(s, 'DELETE', '/api/items/P-1', { token: s.tokens.editor })).status).toBe(204)
    expect(await dbRevisions(s)).toEqual([{ n: 1, status: 'complete' }])
    expect(storedFiles(s)).toEqual(['items/P-2/rev/1/bracket.step'])
  })
})

describe('revisions in read-only and degraded modes', () => {
  it('read-only refuses new revisions but keeps downloads working', async () => {
    const s = await start()
    await createItem(s)
    const data = randomBytes(1000)
    await upload(s, data)
    s.app.modes.setReadOnly(true, 'test')
    const refusedJson = await api(s, 'POST', '/api/items/P-1/revisions', {
      token: s.tokens.editor,
      body: { comment: 'x' },
    })
    expect(refusedJson.status).toBe(503)
    expect(refusedJson.body.error).toBe('server_read_only')
    expect(refusedJson.headers.get('retry-after')).toBeTruthy()
    const refusedFile = await upload(s, data)
    expect(refusedFile.status).toBe(503)
    expect(refusedFile.body.error).toBe('server_read_only')
    expect((await dbRevisions(s)).length).toBe(1)
    const got = await download(s, '/api/items/P-1/revisions/1/file')
    expect(got.status).toBe(200)
    expect(got.body.equals(data)).toBe(true)
  })

  it('degraded refuses file uploads and downloads with storage_unavailable, metadata goes on', async () => {
    const s = await start()
    await createItem(s)
    await upload(s, randomBytes(1000))
    s.app.modes.setStorageHealthy(false, 'test')
    expect(s.app.modes.mode).toBe('degraded')
    const up = await upload(s, randomBytes(1000))
    expect(up.status).toBe(503)
    expect(up.body.error).toBe('storage_unavailable')
    const down = await download(s, '/api/items/P-1/revisions/1/file')
    expect(down.status).toBe(503)
    expect(JSON.parse(down.body.toString()).error).toBe('storage_unavailable')
    const json = await api(s, 'POST', '/api/items/P-1/revisions', {
      token: s.tokens.editor,
      body: { comment: 'metadata only' },
    })
    expect(json.status).toBe(201)
    expect(json.body.revision_number).toBe(2)
    const list = await api(s, 'GET', '/api/items/P-1/revisions', { token: s.tokens.viewer })
    expect(list.body.revisions).toHaveLength(2)
  })
})

describe('revisions on S3 storage', () => {
  async function startWithProxy(storage: Record<string, unknown> = {}) {
    s3 = await startS3()
    proxy = await startCuttingProxy(s3.port)
    // A long health interval: the storage fault must be met by the upload, not the monitor.
    const s = await start({
      storage: {
        minio: { ...s3.minioConfig(), port: proxy.port },
        health_interval: '1h',
        ...storage,
      },
    })
    await createItem(s)
    return s
  }

  function bucketKeys(): Promise<string[]> {
    const client = new Client({
      endPoint: '127.0.0.1',
      port: (s3 as S3Server).port,
      useSSL: false,
      accessKey: 'S3RVER',
      secretKey: 'S3RVER',
    })
    return new Promise((resolve, reject) => {
      const keys: string[] = []
      const stream = client.listObjectsV2('silo', '', true)
      stream.on('data', (o) => o.name && keys.push(o.name))
      stream.on('error', reject)
      stream.on('end', () => resolve(keys))
    })
  }

  it('streams files larger than one part through s3rver and back', async () => {
    const s = await startWithProxy()
    const data = randomBytes(12 * 1024 * 1024)
    const res = await upload(s, data)
    expect(res.status, JSON.stringify(res.body)).toBe(201)
    expect(res.body.file).toMatchObject({ size: data.length, sha256: sha256(data) })
    expect(await bucketKeys()).toEqual(['items/P-1/rev/1/bracket.step'])
    const got = await download(s, '/api/items/P-1/revisions/1/file')
    expect(got.body.equals(data)).toBe(true)
    const part = await download(s, '/api/items/P-1/revisions/1/file', {
      range: 'bytes=6000000-6000099',
    })
    expect(part.status).toBe(206)
    expect(part.body.equals(data.subarray(6_000_000, 6_000_100))).toBe(true)
  })

  // A cut connection fails at once; a silent one (a black hole) only by storage.timeout.
  it.each([
    { fault: 'failing', arm: (p: CuttingProxy, bytes: number) => p.cutAfter(bytes), storage: {} },
    {
      fault: 'going silent',
      arm: (p: CuttingProxy, bytes: number) => p.stallAfter(bytes),
      storage: { timeout: '1s' },
    },
  ])(
    'storage $fault mid-upload gives 503 and leaves no revision, no object, no event',
    async ({ arm, storage }) => {
      const s = await startWithProxy(storage)
      const before = await eventCount(s)
      // Two parts of 5 MiB and 2 MiB; the fault lands in the second, after the first was stored.
      const fault = arm(proxy!, 6 * 1024 * 1024)
      const res = await upload(s, randomBytes(7 * 1024 * 1024))
      await fault
      expect(res.status).toBe(503)
      expect(res.body.error).toBe('storage_unavailable')
      expect(await dbRevisions(s)).toEqual([])
      expect(await eventCount(s)).toBe(before)
      proxy!.heal()
      expect(await bucketKeys()).toEqual([])
      // Storage is back: the next upload takes revision 1.
      expect((await upload(s, randomBytes(1000))).body.revision_number).toBe(1)
      expect(await bucketKeys()).toEqual(['items/P-1/rev/1/bracket.step'])
    },
  )
})

describe('revision roles', () => {
  it('viewers read and download, editors write, no token is 401', async () => {
    const s = await start()
    await createItem(s)
    await upload(s, randomBytes(10))
    const viewerPost = await api(s, 'POST', '/api/items/P-1/revisions', {
      token: s.tokens.viewer,
      body: {},
    })
    expect(viewerPost.status).toBe(403)
    const viewerUpload = await postMultipart(revisionsUrl(s), s.tokens.viewer, [
      { name: 'file', filename: 'a', data: randomBytes(10) },
    ])
    expect(viewerUpload.status).toBe(403)
    for (const path of [
      '/api/items/P-1/revisions',
      '/api/items/P-1/revisions/1',
      '/api/items/P-1/revisions/1/file',
    ]) {
      expect((await api(s, 'GET', path)).status, path).toBe(401)
      expect((await api(s, 'GET', path, { token: s.tokens.viewer })).status, path).toBe(200)
    }
    expect((await api(s, 'POST', '/api/items/P-1/revisions', { body: {} })).status).toBe(401)
    expect((await dbRevisions(s)).length).toBe(1)
  })
})
