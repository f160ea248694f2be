import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { expect, inject } from 'vitest'
import { buildApp } from '../../src/app.js'
import { type Config, loadConfig } from '../../src/config.js'
import { type ActingContext, actingAs, SYSTEM_ACTOR } from '../../src/domain/context.js'
import { createToken } from '../../src/domain/tokens.js'
import {
  createDatabaseFor,
  databaseUrlFor,
  dropDatabaseFor,
  testDatabaseServer,
} from './postgres.js'

export interface TestServer {
  app: FastifyInstance
  url: string
  port: number
  dataDir: string
  config: Config
  tokens: { admin: string; editor: string; viewer: string }
  /** Every log line the server wrote, parsed. */
  logs: Record<string, unknown>[]
  rawLogs: string[]
  close(): Promise<void>
}

/**
 * A fresh data folder holding a copy of the migrated template database, or, where the tests run
 * on PostgreSQL, naming a fresh database cloned from the template there.
 */
export function freshDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'silo-data-'))
  if (testDatabaseServer()) createDatabaseFor(dir)
  else cpSync(inject('templateDb'), join(dir, 'db'), { recursive: true })
  return dir
}

/** Removes a data folder made by freshDataDir, and its database. */
export function removeDataDir(dir: string): void {
  dropDatabaseFor(dir)
  rmSync(dir, { recursive: true, force: true })
}

export function testConfig(dataDir: string, overrides: Record<string, unknown> = {}): Config {
  const base = {
    server: { port: 0, shutdown_timeout: '10s' },
    database: { data_dir: join(dataDir, 'db'), url: databaseUrlFor(dataDir) ?? '' },
    storage: { path: join(dataDir, 'files') },
    log: { level: 'info' },
  }
  return loadConfig({ overrides: mergeDeep(base, overrides) })
}

function mergeDeep(
  a: Record<string, unknown>,
  b: Record<string, unknown>,
): Record<string, unknown> {
  const out = { ...a }
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k]
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object'
        ? mergeDeep(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v
  }
  return out
}

/**
 * Starts the real app on 127.0.0.1:0 over a copy of the template database (or over `dataDir`
 * when given, to restart on the same data), with one token per role.
 */
export async function startServer(
  options: { overrides?: Record<string, unknown>; dataDir?: string; keepData?: boolean } = {},
): Promise<TestServer> {
  const dataDir = options.dataDir ?? freshDataDir()
  const config = testConfig(dataDir, options.overrides)
  const rawLogs: string[] = []
  const logs: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        rawLogs.push(line)
        logs.push(JSON.parse(line) as Record<string, unknown>)
      }
      cb()
    },
  })
  const app = await buildApp(config, { logStream: stream })
  const tokens = {
    admin: (await createToken(app.db, { name: 'test-admin', role: 'admin' })).token,
    editor: (await createToken(app.db, { name: 'test-editor', role: 'editor' })).token,
    viewer: (await createToken(app.db, { name: 'test-viewer', role: 'viewer' })).token,
  }
  await app.listen({ host: '127.0.0.1', port: config.server.port })
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  let closed = false
  return {
    app,
    url: `http://127.0.0.1:${port}`,
    port,
    dataDir,
    config,
    tokens,
    logs,
    rawLogs,
    async close() {
      if (closed) return
      closed = true
      await app.close()
      if (!options.keepData && !options.dataDir) removeDataDir(dataDir)
    },
  }
}

/** What a test token (`test-editor`, …) is recorded as, in events and on rows it writes. */
export function actorNamed(name: string): unknown {
  return { token_id: expect.any(Number), name }
}

/** The server's domain context acting as the server itself, for tests that seed data directly. */
export function asSystem(server: { app: FastifyInstance }): ActingContext {
  return actingAs(server.app.domain, SYSTEM_ACTOR)
}

/** JSON request against a test server; resolves with status, headers and parsed body. */
export async function api(
  server: Pick<TestServer, 'url'>,
  method: string,
  path: string,
  options: {
    token?: string
    body?: unknown
    rawBody?: string
    headers?: Record<string, string>
  } = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const headers: Record<string, string> = { ...options.headers }
  if (options.token) headers.authorization = `Bearer ${options.token}`
  let body: string | undefined
  if (options.rawBody !== undefined) body = options.rawBody
  else if (options.body !== undefined) body = JSON.stringify(options.body)
  if (body !== undefined) headers['content-type'] ??= 'application/json'
  const res = await fetch(`${server.url}${path}`, { method, headers, body })
  const text = await res.text()
  let parsed: unknown = text
  try {
    parsed = text ? JSON.parse(text) : null
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed }
}

/** Creates `n` items `<prefix>-0` … through the HTTP API, one after another. */
export async function createItems(server: TestServer, n: number, prefix = 'P'): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await api(server, 'POST', '/api/items', {
      token: server.tokens.editor,
      body: { part_number: `${prefix}-${i}`, item_type: 'part', description: `item ${i}` },
    })
    if (res.status !== 201) throw new Error(`creating ${prefix}-${i} answered ${res.status}`)
  }
}
