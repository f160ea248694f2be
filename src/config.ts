import { readFileSync } from 'node:fs'
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'
import { parse as parseYaml } from 'yaml'
import {
  type ConfigSchemaNode,
  DURATION_PATTERN,
  SIZE_PATTERN,
  configProblems,
  unknownVariables,
} from './configErrors.js'
import { capacityFor, readSoftFileLimit } from './events/streamCapacity.js'

// Durations are written like "30s", "500ms", "5m" or as a plain number of milliseconds.
const Duration = (def: string, description: string) =>
  Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: DURATION_PATTERN.source })], {
    default: def,
    description,
    duration: true,
  })

const MinioSchema = Type.Object(
  {
    endpoint: Type.String({ minLength: 1, description: 'host name of the S3 server' }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 9000 }),
    use_ssl: Type.Boolean({ default: false }),
    access_key: Type.String({ default: '' }),
    secret_key: Type.String({ default: '' }),
    bucket: Type.String({ minLength: 3, default: 'silo' }),
    region: Type.String({ default: 'us-east-1' }),
  },
  { additionalProperties: false },
)

export const ConfigSchema = Type.Object(
  {
    server: Type.Object(
      {
        host: Type.String({ default: '127.0.0.1' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
        read_only: Type.Boolean({ default: false }),
        shutdown_timeout: Duration('10s', 'grace period for draining on SIGTERM'),
        drain_delay: Duration('0s', 'wait after SIGTERM with /ready at 503 before closing'),
        body_limit: Type.Integer({ minimum: 1024, default: 1048576 }),
        cors_origins: Type.Array(Type.String(), { default: [] }),
        trust_proxy: Type.Boolean({ default: false }),
        pid_file: Type.String({
          default: './data/silo.pid',
          description: 'where the server writes its pid while it runs; empty for none',
        }),
        headers_timeout: Duration(
          '15s',
          'a connection that has not sent a whole request head by then is closed (408)',
        ),
        request_timeout: Duration(
          '30m',
          'a request whose body has not fully arrived by then is closed (408); 0 turns it off',
        ),
        keep_alive_timeout: Duration('72s', 'an idle keep-alive connection is closed after this'),
        session_lifetime: Duration(
          '12h',
          'a browser session (web console) ends after this, or when its token does',
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    database: Type.Object(
      {
        url: Type.String({ default: '', description: 'postgres:// URL; empty uses PGlite' }),
        pool_size: Type.Integer({ minimum: 1, default: 10 }),
        connect_timeout: Duration('5s', 'a connection attempt that takes longer fails'),
        data_dir: Type.String({ default: './data/db' }),
        shared_buffers: Type.String({
          default: '16MB',
          pattern: SIZE_PATTERN.source,
          size: true,
          description: "PGlite's page cache, e.g. 16MB or 1GB; ignored with database.url",
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    storage: Type.Object(
      {
        path: Type.String({ default: './data/files' }),
        minio: Type.Optional(MinioSchema),
        health_interval: Duration('30s', 'time between storage pings'),
        timeout: Duration('5s', 'a ping that takes longer counts as failed'),
        failure_threshold: Type.Integer({ minimum: 1, default: 3 }),
        max_file_size: Type.Integer({
          minimum: 1,
          default: 1073741824,
          description: 'largest revision file accepted, in bytes (413 above it)',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    events: Type.Object(
      {
        retry: Duration('3s', 'reconnect delay sent to clients as `retry:`'),
        heartbeat_interval: Duration('30s', 'comment-free heartbeat event cadence'),
        retention_count: Type.Integer({ minimum: 1, default: 1000000 }),
        retention_age: Duration('30d', 'events older than this are pruned'),
        prune_interval: Duration('1m', 'how often retention is applied'),
        memory_window: Type.Integer({ minimum: 16, default: 4096 }),
        max_streams_per_token: Type.Integer({
          minimum: 1,
          default: 100,
          description: 'most open event streams one token may hold (429 beyond)',
        }),
        max_streams: Type.Integer({
          minimum: 0,
          default: 0,
          description:
            'most open event streams in all (429 beyond); 0 derives it from the file limit',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    import: Type.Object(
      {
        max_size: Type.Integer({
          minimum: 1024,
          default: 33554432,
          description: 'largest CSV or ODS file accepted by the import routes, in bytes',
        }),
        timeout: Duration('60s', 'an import still reading or writing after this is refused'),
      },
      { additionalProperties: false, default: {} },
    ),
    log: Type.Object(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) =>
            Type.Literal(l),
          ),
          { default: 'info' },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
)

type RawConfig = Static<typeof ConfigSchema>

/** The validated configuration; every duration is resolved to milliseconds. */
export type Config = {
  server: Omit<
    RawConfig['server'],
    | 'shutdown_timeout'
    | 'drain_delay'
    | 'headers_timeout'
    | 'request_timeout'
    | 'keep_alive_timeout'
  > & {
    shutdown_timeout: number
    drain_delay: number
    headers_timeout: number
    request_timeout: number
    keep_alive_timeout: number
    session_lifetime: number
  }
  database: Omit<RawConfig['database'], 'connect_timeout'> & { connect_timeout: number }
  storage: Omit<RawConfig['storage'], 'health_interval' | 'timeout'> & {
    health_interval: number
    timeout: number
  }
  events: Omit<
    RawConfig['events'],
    'retry' | 'heartbeat_interval' | 'retention_age' | 'prune_interval'
  > & { retry: number; heartbeat_interval: number; retention_age: number; prune_interval: number }
  import: Omit<RawConfig['import'], 'timeout'> & { timeout: number }
  log: RawConfig['log']
}

export type MinioConfig = Static<typeof MinioSchema>

export class ConfigError extends Error {}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000 }

export function parseDuration(value: number | string): number {
  if (typeof value === 'number') return value
  const match = DURATION_PATTERN.exec(value)
  if (!match) throw new ConfigError(`not a duration: ${value}`)
  return Number(match[1]) * (UNIT_MS[match[2] as string] as number)
}

/** Variables read besides the settings: the config file's path (src/main.ts, src/cli.ts). */
const OTHER_VARIABLES = ['SILO_CONFIG']

/**
 * Reads SILO_<SECTION>_<KEY> variables for every leaf of the schema, e.g. SILO_DATABASE_URL;
 * notes which key each set, and which SILO_* variables name no setting (a misspelt one would
 * otherwise be ignored without a word).
 */
function envOverrides(env: NodeJS.ProcessEnv): {
  values: Record<string, unknown>
  fromEnv: Map<string, string>
  /** SILO_* variables that name no setting. */
  problems: string[]
} {
  const out: Record<string, unknown> = {}
  const fromEnv = new Map<string, string>()
  const known = new Set(OTHER_VARIABLES)
  const walk = (schema: ConfigSchemaNode, path: string[]) => {
    if (schema.type === 'object' && schema.properties) {
      for (const [key, child] of Object.entries(schema.properties)) walk(child, [...path, key])
      return
    }
    const name = `SILO_${path.join('_').toUpperCase()}`
    known.add(name)
    const raw = env[name]
    if (raw === undefined) return
    fromEnv.set(path.join('.'), name)
    let value: unknown = raw
    if (schema.type === 'boolean') value = raw === 'true' ? true : raw === 'false' ? false : raw
    else if (schema.type === 'integer' || (schema.duration && /^[0-9]+$/.test(raw)))
      value = /^-?[0-9]+$/.test(raw) ? Number(raw) : raw
    else if (schema.type === 'array') value = raw === '' ? [] : raw.split(',').map((s) => s.trim())
    let target = out
    for (const key of path.slice(0, -1)) {
      target = (target[key] ??= {}) as Record<string, unknown>
    }
    target[path[path.length - 1] as string] = value
  }
  walk(ConfigSchema as ConfigSchemaNode, [])
  const problems = unknownVariables(env, known).map(
    (u) => `${u.name} is not a setting; did you mean ${u.closest}?`,
  )
  return { values: out, fromEnv, problems }
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (
    base &&
    over &&
    typeof base === 'object' &&
    typeof over === 'object' &&
    !Array.isArray(base) &&
    !Array.isArray(over)
  ) {
    const out: Record<string, unknown> = { ...(base as Record<string, unknown>) }
    for (const [k, v] of Object.entries(over)) out[k] = deepMerge(out[k], v)
    return out
  }
  return over === undefined ? base : over
}

/** S3 copies an object of at most 5 GiB in one request, which is how an upload gets its key. */
const MAX_S3_FILE_SIZE = 5 * 1024 ** 3

/** Rules that tie one setting to another, checked once each setting is valid on its own. */
function crossKeyProblems(raw: RawConfig): string[] {
  const problems: string[] = []
  const requestTimeout = parseDuration(raw.server.request_timeout)
  if (requestTimeout > 0 && parseDuration(raw.server.headers_timeout) > requestTimeout) {
    problems.push('server.headers_timeout must not exceed server.request_timeout')
  }
  if (raw.storage.minio && raw.storage.max_file_size > MAX_S3_FILE_SIZE) {
    problems.push(
      `storage.max_file_size must be at most ${MAX_S3_FILE_SIZE} (5 GiB) with storage.minio, the largest object S3 copies in one request`,
    )
  }
  return problems
}

/**
 * Builds the configuration from (in rising priority) the schema defaults, an optional YAML
 * file, SILO_* environment variables and explicit overrides (used by tests).
 */
export function loadConfig(
  options: { file?: string; env?: NodeJS.ProcessEnv; overrides?: unknown } = {},
): Config {
  let fromFile: unknown = {}
  if (options.file) {
    try {
      fromFile = parseYaml(readFileSync(options.file, 'utf8')) ?? {}
    } catch (err) {
      throw new ConfigError(`cannot read config file ${options.file}: ${(err as Error).message}`)
    }
  }
  const env = envOverrides(options.env ?? {})
  const merged = deepMerge(deepMerge(fromFile, env.values), options.overrides ?? {})
  const withDefaults = Value.Default(ConfigSchema, structuredClone(merged))
  const problems = [...env.problems]
  if (!Value.Check(ConfigSchema, withDefaults)) {
    const described = configProblems(ConfigSchema as ConfigSchemaNode, withDefaults, env.fromEnv)
    // The validator's own words, should a rule ever go undescribed.
    problems.push(
      ...(described.length > 0
        ? described
        : Value.Errors(ConfigSchema, withDefaults).map((e) => `${e.instancePath} ${e.message}`)),
    )
  }
  const raw = withDefaults as RawConfig
  if (problems.length === 0) problems.push(...crossKeyProblems(raw))
  if (problems.length > 0) {
    throw new ConfigError(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
  }
  const headersTimeout = parseDuration(raw.server.headers_timeout)
  const requestTimeout = parseDuration(raw.server.request_timeout)
  return {
    server: {
      ...raw.server,
      shutdown_timeout: parseDuration(raw.server.shutdown_timeout),
      drain_delay: parseDuration(raw.server.drain_delay),
      headers_timeout: headersTimeout,
      request_timeout: requestTimeout,
      keep_alive_timeout: parseDuration(raw.server.keep_alive_timeout),
      session_lifetime: parseDuration(raw.server.session_lifetime),
    },
    database: { ...raw.database, connect_timeout: parseDuration(raw.database.connect_timeout) },
    storage: {
      ...raw.storage,
      health_interval: parseDuration(raw.storage.health_interval),
      timeout: parseDuration(raw.storage.timeout),
    },
    events: {
      ...raw.events,
      retry: parseDuration(raw.events.retry),
      heartbeat_interval: parseDuration(raw.events.heartbeat_interval),
      retention_age: parseDuration(raw.events.retention_age),
      prune_interval: parseDuration(raw.events.prune_interval),
      max_streams:
        raw.events.max_streams === 0
          ? capacityFor(readSoftFileLimit()).maxStreams
          : raw.events.max_streams,
    },
    import: { ...raw.import, timeout: parseDuration(raw.import.timeout) },
    log: raw.log,
  }
}
