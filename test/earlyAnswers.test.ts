import { execFile } from 'node:child_process'
import { connect } from 'node:net'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { api, startServer, type TestServer } from './support/server.js'

/**
 * An answer given before a request's body has arrived reaches the client (README, "Bad
 * input"): clients that send the whole body before reading, and those that ask first with
 * `Expect: 100-continue`.
 */

let server: TestServer
beforeAll(async () => {
  server = await startServer()
})
afterAll(async () => {
  await server?.close()
})

/**
 * As Python's http.client does: writes the head and the whole body, and only then reads the
 * answer (a reset that arrived meanwhile has thrown it away). Resolves with what could be read
 * once the answer is complete or the connection has gone.
 */
function sendWhole(headText: string, body: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(server.port, '127.0.0.1')
    let answer = ''
    const done = () => {
      socket.destroy()
      resolve(answer)
    }
    socket.setEncoding('latin1')
    socket.pause()
    socket.on('data', (chunk: string) => {
      answer += chunk
      const [headPart, rest] = answer.split('\r\n\r\n', 2)
      const length = /content-length: ([0-9]+)/i.exec(headPart ?? '')?.[1]
      if (rest !== undefined && length !== undefined && rest.length >= Number(length)) done()
    })
    socket.on('error', () => {})
    socket.on('close', done)
    socket.write(headText)
    socket.write(body, () => socket.resume())
  })
}

const head = (path: string, token: string | undefined, type: string, length: number) =>
  [
    `POST ${path} HTTP/1.1`,
    'Host: silo',
    ...(token ? [`Authorization: Bearer ${token}`] : []),
    `Content-Type: ${type}`,
    `Content-Length: ${length}`,
    '',
    '',
  ].join('\r\n')

describe('answers before the body has arrived', () => {
  it.each([1, 2, 3])(
    'a client that sends a 20 MB item body whole before reading reads the 413 (try %i)',
    async () => {
      // Given a body twenty times over server.body_limit
      const body = Buffer.alloc(20 * 1024 * 1024, 'a')
      // When it is sent whole, as Python's http.client does
      const answer = await sendWhole(
        head('/api/items', server.tokens.editor, 'application/json', body.length),
        body,
      )
      // Then the client reads the answer the server gave at once
      expect(answer).toMatch(/^HTTP\/1\.1 413 /)
      expect(answer).toContain('"error":"payload_too_large"')
    },
  )

  it('Python http.client posting a 5 MB item body gets the 413, not a broken pipe', async (ctx) => {
    const python = await promisify(execFile)('python3', ['--version']).catch(() => null)
    if (!python) ctx.skip('python3 is not installed')
    const script = [
      'import http.client, sys',
      `c = http.client.HTTPConnection("127.0.0.1", ${server.port})`,
      `c.request("POST", "/api/items", body=b"a" * (5 * 1024 * 1024), headers={"Authorization": "Bearer ${server.tokens.editor}", "Content-Type": "application/json"})`,
      'r = c.getresponse()',
      'print(r.status, r.read().decode())',
    ].join('\n')
    const { stdout } = await promisify(execFile)('python3', ['-c', script])
    expect(stdout).toMatch(/^413 .*payload_too_large/)
  })
})

describe('Expect: 100-continue', () => {
  /** Sends the head only and reads until the first answer line. */
  function ask(headText: string): Promise<{ socket: ReturnType<typeof connect>; first: string }> {
    return new Promise((resolve, reject) => {
      const socket = connect(server.port, '127.0.0.1')
      socket.setEncoding('latin1')
      let seen = ''
      const onData = (chunk: string) => {
        seen += chunk
        if (seen.includes('\r\n\r\n')) {
          socket.off('data', onData)
          resolve({ socket, first: seen })
        }
      }
      socket.on('data', onData)
      socket.on('error', reject)
      socket.write(headText)
    })
  }

  it('answers an over-limit body with 413 and no invitation to send it', async () => {
    const { socket, first } = await ask(
      head('/api/items', server.tokens.editor, 'application/json', 5 * 1024 * 1024).replace(
        '\r\n\r\n',
        '\r\nExpect: 100-continue\r\n\r\n',
      ),
    )
    socket.destroy()
    expect(first).toMatch(/^HTTP\/1\.1 413 /)
  })

  it('answers a request without a valid token with 401 before any body is sent', async () => {
    const { socket, first } = await ask(
      head('/api/items', 'silo_nope', 'application/json', 100).replace(
        '\r\n\r\n',
        '\r\nExpect: 100-continue\r\n\r\n',
      ),
    )
    socket.destroy()
    expect(first).toMatch(/^HTTP\/1\.1 401 /)
  })

  it('invites a body within the limits, then creates the item', async () => {
    const json = JSON.stringify({ part_number: 'EXPECT-1', item_type: 'part' })
    const { socket, first } = await ask(
      head('/api/items', server.tokens.editor, 'application/json', json.length).replace(
        '\r\n\r\n',
        '\r\nExpect: 100-continue\r\n\r\n',
      ),
    )
    expect(first).toMatch(/^HTTP\/1\.1 100 Continue\r\n/)
    const answer = await new Promise<string>((resolve) => {
      let rest = ''
      socket.on('data', (chunk: string) => {
        rest += chunk
        if (rest.includes('EXPECT-1')) resolve(rest)
      })
      socket.write(json)
    })
    socket.destroy()
    expect(answer).toMatch(/^HTTP\/1\.1 201 /)
    const item = await api(server, 'GET', '/api/items/EXPECT-1', { token: server.tokens.viewer })
    expect(item.status).toBe(200)
  })
})
