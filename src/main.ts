import type { Config } from './config.js'

// SIGUSR1 is also Node's "open the inspector" signal: a process with no listener for it starts a
// debugger on 127.0.0.1:9229. The listener goes in before any import that takes time, and
// toggles that arrive during start-up are applied once the server exists.
let earlyToggles = 0
let toggleReadOnly: (() => void) | null = null
process.on('SIGUSR1', () => {
  if (toggleReadOnly) toggleReadOnly()
  else earlyToggles++
})
// A stop signal during start-up must not kill the process while PGlite is being opened (that
// leaves its lock file behind); it is replayed once graceful shutdown is in place.
let earlyStop: NodeJS.Signals | null = null
const recordStop = (signal: NodeJS.Signals) => {
  earlyStop ??= signal
}
process.on('SIGTERM', recordStop)
process.on('SIGINT', recordStop)

// A reader that went away (`npm start | head -1`, a log shipper restarting) must not stop the
// server or hang its exit: what it would have read is dropped (the logger does the same).
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err
  })
}

// PGlite's PostgreSQL is WebAssembly. V8 first runs it as baseline (Liftoff) code and re-compiles
// the hot functions with its optimising compiler on background threads; that compiler's scratch
// memory, freed, stays in glibc's per-thread arenas, some 65 MiB of RSS for good. Baseline code
// alone keeps it away (docs/BENCHMARKS.md, "Memory and start"). Set before PGlite compiles.
const { setFlagsFromString } = await import('node:v8')
setFlagsFromString('--liftoff-only')

const { parseArgs } = await import('node:util')
const { setTimeout: sleep } = await import('node:timers/promises')
const { loadConfig, ConfigError } = await import('./config.js')
const { buildApp } = await import('./app.js')
const { DatabaseLockedError } = await import('./db/pglite.js')
const { ensureBootstrapAdmin } = await import('./domain/tokens.js')
const { default: closeWithGrace } = await import('close-with-grace')
const { removePidFile, writePidFile } = await import('./pidFile.js')

const { values: args } = parseArgs({ options: { config: { type: 'string', short: 'c' } } })

function fail(message: string, code: number): never {
  process.stderr.write(`silo: ${message}\n`)
  process.exit(code)
}

let config: Config
try {
  config = loadConfig({ file: args.config ?? process.env.SILO_CONFIG, env: process.env })
} catch (err) {
  if (err instanceof ConfigError) fail(err.message, 2)
  throw err
}

let app
try {
  app = await buildApp(config)
} catch (err) {
  if (err instanceof DatabaseLockedError) fail(err.message, 1)
  throw err
}
const server = app

toggleReadOnly = () => server.modes.toggleReadOnly('SIGUSR1')
if (earlyToggles % 2 === 1) toggleReadOnly()

closeWithGrace(
  {
    delay: config.server.shutdown_timeout,
    logger: { error: (message: unknown) => server.log.error(message) },
  },
  async ({ signal, err }) => {
    if (err) server.log.error({ err }, 'fatal error; shutting down')
    else server.log.info(`${signal ?? 'exit'} received; draining`)
    const started = performance.now()
    server.lifecycle.beginShutdown()
    if (config.server.drain_delay > 0) await sleep(config.server.drain_delay)
    await server.close()
    const durationMs = Math.round(performance.now() - started)
    server.log.info({ duration_ms: durationMs }, `shutdown complete in ${durationMs} ms`)
  },
)

process.off('SIGTERM', recordStop)
process.off('SIGINT', recordStop)
if (earlyStop) {
  process.kill(process.pid, earlyStop)
} else {
  await serve()
}

async function serve() {
  let bootstrapToken: string | null
  let address: string
  try {
    bootstrapToken = await ensureBootstrapAdmin(server.db)
    address = await server.listen({ host: config.server.host, port: config.server.port })
  } catch (err) {
    // A stop signal that landed between these steps closed the app under them: not an error.
    if (server.lifecycle.shuttingDown) return
    throw err
  }
  const pidFile = config.server.pid_file
  if (pidFile) {
    try {
      writePidFile(pidFile)
      // Whatever ends the process (a fatal error, the grace period running out) takes it along.
      process.once('exit', () => removePidFile(pidFile))
    } catch (err) {
      // Signals by pid still work; the server is no less useful without the file.
      server.log.error({ err }, `cannot write the pid file ${pidFile}; running without one`)
    }
  }
  process.stdout.write(
    `silo listening on ${address} (mode ${server.modes.mode}, pid ${process.pid})\n`,
  )
  if (bootstrapToken) {
    // Printed once, straight to the terminal and never through the logger.
    process.stdout.write(
      `first start: created admin token (shown only now, store it safely):\n  ${bootstrapToken}\n`,
    )
  }
}
