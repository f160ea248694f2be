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
      shared_buffers: '16MB',
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
    [{ server: { prot: 1 } }, 'server.prot is not a setting; did you mean server.port?'],
    [
      { server: { port: 'eighty' } },
      'server.port must be a whole number from 0 to 65535; got "eighty"',
    ],
    [
      { storage: { health_interval: '30 seconds' } },
      'storage.health_interval must be a duration: a whole number of milliseconds, or a number and a unit (ms, s, m, h, d) such as "500ms", "30s", "5m"; got "30 seconds"',
    ],
    [
      { log: { level: 'loud' } },
      'log.level must be one of fatal, error, warn, info, debug, trace, silent; got "loud"',
    ],
    [{ storage: { minio: { port: 9000 } } }, 'storage.minio.endpoint is required'],
    [{ server: { cors_origins: 'https://a.example' } }, 'server.cors_origins must be a list'],
    [
      { storage: { minio: { endpoint: 's3.internal' }, max_file_size: 6 * 1024 ** 3 } },
      'storage.max_file_size must be at most 5368709120 (5 GiB) with storage.minio',
    ],
    [
      { server: { headers_timeout: '1m', request_timeout: '30s' } },
      'server.headers_timeout must not exceed server.request_timeout',
    ],
  ])('rejects %j naming the key and what is allowed', (overrides, message) => {
    expect(() => loadConfig({ overrides })).toThrow(ConfigError)
    expect(() => loadConfig({ overrides })).toThrow(message)
  })

  it('names the variable a bad value came from', () => {
    expect(() => loadConfig({ env: { SILO_SERVER_READ_ONLY: 'yes' } })).toThrow(
      'server.read_only (SILO_SERVER_READ_ONLY) must be true or false; got "yes"',
    )
  })

  it('refuses a SILO_* variable that names no setting, with the closest one, and every problem at once', () => {
    const load = () =>
      loadConfig({
        env: { SILO_SERVER_PORTT: '8301', SILO_EVENT_RETRY: '1s', SILO_SERVER_PORT: 'x' },
      })
    expect(load).toThrow('SILO_SERVER_PORTT is not a setting; did you mean SILO_SERVER_PORT?')
    expect(load).toThrow('SILO_EVENT_RETRY is not a setting; did you mean SILO_EVENTS_RETRY?')
    expect(load).toThrow('server.port (SILO_SERVER_PORT) must be a whole number')
  })

  it('takes SILO_CONFIG, and variables that are not SILO_*, without complaint', () => {
    expect(() => loadConfig({ env: { SILO_CONFIG: '', SILOX: '1', PATH: '/bin' } })).not.toThrow()
  })
})
