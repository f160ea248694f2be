import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { createServer as createNetServer, type Server, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import S3rver from 's3rver'

/**
 * Real S3 endpoints for storage tests: s3rver (which the `minio` client speaks to unchanged),
 * stoppable and restartable on the same port, and a "black hole" that accepts TCP connections
 * and never answers.
 *
 * Ports are taken below the kernel's ephemeral range, not from `listen(0)`: once a listener is
 * stopped, an ephemeral port can be handed to an outgoing connection (even the app's own ping
 * to that very port, which then connects to itself), and a restart on it would fail or hang.
 */

export const S3_ACCESS_KEY = 'S3RVER'
export const S3_SECRET_KEY = 'S3RVER'
const HOST = '127.0.0.1'

function ephemeralRangeStart(): number {
  try {
    const low = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0],
    )
    if (Number.isInteger(low) && low > 12000) return low
  } catch {
    // not Linux: fall through
  }
  return 32768
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err)
    server.once('error', onError)
    server.listen(port, HOST, () => {
      server.off('error', onError)
      const address = server.address()
      resolve(typeof address === 'object' && address ? address.port : port)
    })
  })
}

/** Listens on `port`, or on a free port below the ephemeral range when none is given. */
async function listenOn(server: Server, port?: number): Promise<number> {
  if (port !== undefined) return listen(server, port)
  const high = ephemeralRangeStart()
  const low = high - 10000
  for (let attempt = 0; attempt < 100; attempt++) {
    const candidate = low + Math.floor(Math.random() * (high - low))
    try {
      return await listen(server, candidate)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err
    }
  }
  throw new Error(`no free port in ${low}-${high - 1}`)
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())))
}

/** The app's `storage.minio` config block for an S3 endpoint on 127.0.0.1:`port`. */
export function minioConfig(port: number, bucket = 'silo'): Record<string, unknown> {
  return { endpoint: HOST, port, access_key: S3_ACCESS_KEY, secret_key: S3_SECRET_KEY, bucket }
}

export interface S3Server {
  readonly port: number
  /** The data directory; it survives stop()/restart(), so buckets do too. */
  readonly directory: string
  readonly running: boolean
  /** The `storage.minio` config block for the app. */
  minioConfig(bucket?: string): Record<string, unknown>
  /** Stops answering: closes the listener and every open connection (connections are refused). */
  stop(): Promise<void>
  /** Listens again on the same port over the same directory. */
  restart(): Promise<void>
  /** Stops (if running) and removes the data directory. */
  close(): Promise<void>
}

/** Starts s3rver on 127.0.0.1 on a free port (or `options.port`) over a fresh temp directory. */
export async function startS3(options: { port?: number } = {}): Promise<S3Server> {
  const directory = mkdtempSync(join(tmpdir(), 'silo-s3-'))
  // A fresh s3rver app per listen: s3rver closes its logger when its server closes.
  const makeServer = () =>
    createHttpServer(new S3rver({ silent: true, directory, address: HOST }).callback())
  let server: HttpServer | null = makeServer()
  let port: number
  try {
    port = await listenOn(server, options.port)
  } catch (err) {
    rmSync(directory, { recursive: true, force: true })
    throw err
  }

  const stop = async () => {
    if (!server) return
    const closing = closeServer(server)
    server.closeAllConnections()
    server = null
    await closing
  }

  return {
    get port() {
      return port
    },
    directory,
    get running() {
      return server !== null
    },
    minioConfig: (bucket) => minioConfig(port, bucket),
    stop,
    async restart() {
      if (server) throw new Error('s3rver is already running')
      const next = makeServer()
      await listen(next, port)
      server = next
    },
    async close() {
      await stop()
      rmSync(directory, { recursive: true, force: true })
    },
  }
}

export interface BlackHole {
  readonly port: number
  /** Connections accepted so far. */
  readonly accepted: number
  /** Connections currently held open (the peer has not closed them yet). */
  readonly open: number
  /** Destroys every held connection and stops listening; the port is free again afterwards. */
  close(): Promise<void>
}

/** A TCP endpoint that accepts connections, reads whatever is sent, and never answers. */
export async function startBlackHole(options: { port?: number } = {}): Promise<BlackHole> {
  const sockets = new Set<Socket>()
  let accepted = 0
  const server = createNetServer((socket) => {
    accepted++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    socket.resume()
  })
  const port = await listenOn(server, options.port)
  let closed = false
  return {
    port,
    get accepted() {
      return accepted
    },
    get open() {
      return sockets.size
    },
    async close() {
      if (closed) return
      closed = true
      const closing = closeServer(server)
      for (const socket of sockets) socket.destroy()
      await closing
    },
  }
}

export interface CuttingProxy {
  readonly port: number
  /**
   * Arms the proxy: once more than `bytes` have gone towards the target (over all connections,
   * counted from now), the connection carrying them is destroyed on both sides and every
   * connection after it is refused, until heal(). Resolves when that cut has happened.
   */
  cutAfter(bytes: number): Promise<void>
  /**
   * Like cutAfter, but the endpoint goes silent instead (a black hole): from then on nothing is
   * passed either way and no connection is closed, until heal().
   */
  stallAfter(bytes: number): Promise<void>
  heal(): void
  close(): Promise<void>
}

/**
 * A TCP proxy in front of a real endpoint that can fail in the middle of a transfer: storage
 * dying while an upload streams into it, which stopping the server between requests cannot
 * reproduce.
 */
export async function startCuttingProxy(targetPort: number): Promise<CuttingProxy> {
  const sockets = new Set<Socket>()
  let limit = Infinity
  let sent = 0
  let down = false
  let stall = false
  let silent = false
  let onCut: (() => void) | null = null
  const server = createNetServer((client) => {
    sockets.add(client)
    client.on('close', () => sockets.delete(client))
    client.on('error', () => {})
    if (down) {
      client.destroy()
      return
    }
    const upstream = new Socket()
    sockets.add(upstream)
    upstream.on('close', () => sockets.delete(upstream))
    upstream.on('error', () => client.destroy())
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
    client.on('data', (chunk: Buffer) => {
      if (silent) return
      sent += chunk.length
      if (sent > limit) {
        limit = Infinity
        if (stall) silent = true
        else {
          down = true
          client.destroy()
          upstream.destroy()
        }
        onCut?.()
        return
      }
      if (!upstream.write(chunk)) client.pause()
    })
    upstream.on('drain', () => client.resume())
    upstream.on('data', (chunk: Buffer) => {
      if (!silent) client.write(chunk)
    })
    upstream.connect(targetPort, HOST)
  })
  const armAfter = (bytes: number, silently: boolean) => {
    limit = bytes
    sent = 0
    stall = silently
    return new Promise<void>((resolve) => {
      onCut = resolve
    })
  }
  const port = await listenOn(server)
  return {
    port,
    cutAfter: (bytes) => armAfter(bytes, false),
    stallAfter: (bytes) => armAfter(bytes, true),
    heal() {
      down = false
      silent = false
    },
    async close() {
      const closing = closeServer(server)
      for (const socket of sockets) socket.destroy()
      await closing
    },
  }
}
