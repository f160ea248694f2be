import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../../src/config.js'

describe('loadConfig', () => {
  it('runs on embedded defaults: loopback only, PGlite and files under ./data', () => {
    const config = loadConfig()
    expect(config.server.host).toBe('127.0.0.1')
    expect(config.server.port).toBe(8080)
    expect(config.database).toEqual({
      url: '',
      data_dir: './data/db',
      pool_size: 10,
      connect_timeout: 5000,
    })
    expect(config.storage.path).toBe('./data/files')
    expect(config.storage.minio).toBeUndefined()
    expect(config.storage.health_interval).toBe(30_000)
    expect(config.events.heartbeat_interval).toBe(30_000)
    expect(config.server.cors_origins).toEqual([])
  })

  it('reads a YAML file and lets SILO_* variables override it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'silo-config-'))
    const file = join(dir, 'silo.yaml')
    writeFileSync(file, 'server:\n  port: 9000\n  read_only: true\nstorage:\n  timeout: 2s\n')
    const config = loadConfig({
      file,
      env: {
        SILO_SERVER_PORT: '9100',
        SILO_SERVER_CORS_ORIGINS: 'https://a.example, https://b.example',
        SILO_STORAGE_MINIO_ENDPOINT: 'minio.internal',
        SILO_EVENTS_RETRY: '1500',
      },
    })
    expect(config.server.port).toBe(9100)
    expect(config.server.read_only).toBe(true)
    expect(config.server.cors_origins).toEqual(['https://a.example', 'https://b.example'])
    expect(config.storage.timeout).toBe(2000)
    expect(config.storage.minio?.endpoint).toBe('minio.internal')
    expect(config.storage.minio?.port).toBe(9000)
    expect(config.events.retry).toBe(1500)
  })

  it.each([
    [{ server: { prot: 1 } }, /server\/prot/],
    [{ server: { port: 'eighty' } }, /server\/port/],
    [{ storage: { health_interval: '30 seconds' } }, /health_interval/],
    [{ log: { level: 'loud' } }, /log\/level/],
  ])('rejects %j with a message naming the key', (overrides, message) => {
    expect(() => loadConfig({ overrides })).toThrow(ConfigError)
    expect(() => loadConfig({ overrides })).toThrow(message)
  })

  it('rejects a boolean variable that is not true or false', () => {
    expect(() => loadConfig({ env: { SILO_SERVER_READ_ONLY: 'yes' } })).toThrow(/read_only/)
  })
})
