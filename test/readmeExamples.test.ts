import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { api, startServer, type TestServer } from './support/server.js'

/**
 * The README's example block, run as written, in order, against a real server on a fresh
 * database: the README cannot drift from the server. Every curl must get a 2xx (the block's
 * one stream example ends by its own --max-time).
 */

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const BLOCK = /^Examples, to run in order[\s\S]*?```sh\n([\s\S]*?)\n```/m.exec(README)?.[1]

// Fails the block on any HTTP error, and on any curl failure but a stream's own time limit.
const STRICT_CURL = `
curl() {
  local rc=0
  command curl --fail-with-body -sS "$@" || rc=$?
  if [ "$rc" -eq 28 ] && [[ " $* " == *" -N "* ]]; then return 0; fi
  return "$rc"
}
set -euo pipefail
`

let server: TestServer
let dir = ''
beforeAll(async () => {
  server = await startServer()
  dir = mkdtempSync(join(tmpdir(), 'silo-readme-'))
})
afterAll(async () => {
  await server?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe("the README's examples", () => {
  it('run as written, in order, on a fresh server', { timeout: 120_000 }, async () => {
    // Given the block, a server, and its admin token as the first start would print it
    expect(BLOCK, 'the README has no example block').toBeDefined()
    // When the block runs in bash, every command in turn
    const run = await promisify(execFile)('bash', ['-c', STRICT_CURL + BLOCK], {
      cwd: dir,
      env: { ...process.env, S: server.url, ADMIN: server.tokens.admin },
    }).catch((err: { stdout?: string; stderr?: string; code?: number }) => err)
    // Then every command succeeded
    expect('code' in run ? run.code : 0, `${run.stderr}\n${run.stdout?.slice(-2000)}`).toBe(0)
    // And it did what it says: the item it imported is there, the one it deleted is not
    const imported = await api(server, 'GET', '/api/items/P-2001', { token: server.tokens.viewer })
    expect(imported.body).toMatchObject({
      description: 'Washer M3',
      properties: { material: 'A2' },
    })
    expect(
      (await api(server, 'GET', '/api/items/P-1001', { token: server.tokens.viewer })).status,
    ).toBe(404)
    expect(readFileSync(join(dir, 'downloaded.step'), 'utf8')).toBe(
      'ISO-10303-21;\nEND-ISO-10303-21;\n',
    )
  })
})
