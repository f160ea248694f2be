import http, { type IncomingMessage } from 'node:http'
import https from 'node:https'
import type { Socket } from 'node:net'
import { Client, CopyDestinationOptions, CopySourceOptions } from 'minio'
import type { MinioConfig } from '../config.js'
import {
  type ByteRange,
  type ObjectStorage,
  STAGING_PREFIX,
  StorageError,
} from './objectStorage.js'

// S3's smallest multipart part. An upload holds at most one part in memory; a file that fits in
// one part goes up in a single PUT. S3 allows 10,000 parts, which puts the largest file at
// 48.8 GiB.
const PART_SIZE = 5 * 1024 * 1024

type AgentClass = typeof http.Agent

/**
 * An agent whose sockets are destroyed after `idleMs` without traffic. The `minio` client has no
 * timeout of its own: without this, a black-holed endpoint would hang an upload or download
 * for as long as the kernel keeps the connection. Node itself re-arms the agent's `timeout` on
 * every socket it hands out or takes back; it just never destroys a socket in use.
 */
function idleTimeoutAgent(Base: AgentClass, idleMs: number): http.Agent {
  const agent = new Base({ keepAlive: true, maxSockets: 64, timeout: idleMs })
  const create = agent.createConnection.bind(agent)
  agent.createConnection = (options, callback) => {
    const socket = create(options, callback) as Socket | null | undefined
    socket?.on('timeout', () => {
      socket.destroy(new StorageError(`storage did not answer for ${idleMs} ms`))
    })
    return socket
  }
  return agent
}

/**
 * MinIO / S3 storage through the `minio` client. Pings run on their own agent whose sockets are
 * destroyed when the caller's signal aborts: a black-holed endpoint costs one socket for one
 * timeout, never a hung ping.
 */
export function minioStorage(config: MinioConfig, timeoutMs: number): ObjectStorage {
  const Base: AgentClass = config.use_ssl ? https.Agent : http.Agent
  const clientFor = (transportAgent: http.Agent) =>
    new Client({
      endPoint: config.endpoint,
      port: config.port,
      useSSL: config.use_ssl,
      accessKey: config.access_key,
      secretKey: config.secret_key,
      region: config.region,
      transportAgent,
    })
  const pingAgent = new Base({ keepAlive: false })
  const pingClient = clientFor(pingAgent)
  const dataAgent = idleTimeoutAgent(Base, timeoutMs)
  const client = clientFor(dataAgent)
  const bucket = config.bucket

  return {
    kind: 'minio',
    async ping(signal) {
      const abort = () => pingAgent.destroy()
      signal.addEventListener('abort', abort, { once: true })
      try {
        // A fresh server has no bucket yet; creating it is part of being ready for files.
        if (!(await pingClient.bucketExists(bucket))) {
          await pingClient.makeBucket(bucket, config.region)
        }
      } finally {
        signal.removeEventListener('abort', abort)
      }
    },
    // The client's own putObject buffers a stream of unknown length in parts of over 500 MiB
    // and resumes any earlier incomplete upload of the key (which needs ListMultipartUploads);
    // parts are sent here instead, one at a time, and a failed upload is aborted.
    async put(key, body, contentType) {
      const headers = { 'Content-Type': contentType }
      let uploadId: string | undefined
      const etags: { part: number; etag: string }[] = []
      const sendPart = async (part: Buffer) => {
        uploadId ??= await client.initiateNewMultipartUpload(bucket, key, headers)
        const partNumber = etags.length + 1
        const sent = await client.uploadPart(
          { bucketName: bucket, objectName: key, uploadID: uploadId, partNumber, headers: {} },
          part,
        )
        etags.push({ part: partNumber, etag: sent.etag })
      }
      try {
        let held: Buffer[] = []
        let heldBytes = 0
        for await (const chunk of body as AsyncIterable<Buffer>) {
          held.push(chunk)
          heldBytes += chunk.length
          while (heldBytes >= PART_SIZE) {
            const all = Buffer.concat(held)
            await sendPart(all.subarray(0, PART_SIZE))
            held = heldBytes > PART_SIZE ? [all.subarray(PART_SIZE)] : []
            heldBytes -= PART_SIZE
          }
        }
        const rest = Buffer.concat(held)
        if (uploadId === undefined) {
          await client.putObject(bucket, key, rest, rest.length, headers)
          return
        }
        if (rest.length > 0) await sendPart(rest)
        await client.completeMultipartUpload(bucket, key, uploadId, etags)
      } catch (err) {
        body.destroy()
        if (uploadId !== undefined) {
          // Best effort: storage may be the thing that failed.
          await client.abortMultipartUpload(bucket, key, uploadId).catch(() => {})
        }
        throw err
      }
    },
    async get(key, range?: ByteRange) {
      const response = range
        ? await client.getPartialObject(bucket, key, range.start, range.end - range.start + 1)
        : await client.getObject(bucket, key)
      // Once the body flows, pauses come from the downloading client's pace, not from storage:
      // the idle timeout would cut a slow reader off. Node re-arms it when the socket is freed.
      ;(response as IncomingMessage).socket?.setTimeout(0)
      return response
    },
    async remove(key) {
      await client.removeObject(bucket, key)
    },
    // A server-side copy: the bytes do not pass through silo. S3 copies up to 5 GiB this way.
    async move(from, to) {
      await client.copyObject(
        new CopySourceOptions({ Bucket: bucket, Object: from }),
        new CopyDestinationOptions({ Bucket: bucket, Object: to }),
      )
      await client.removeObject(bucket, from)
    },
    async removeLeftovers(olderThanMs) {
      const cutoff = Date.now() - olderThanMs
      let removed = 0
      for await (const object of client.listObjectsV2(bucket, STAGING_PREFIX, true)) {
        const { name, lastModified } = object as { name?: string; lastModified?: Date }
        if (name && lastModified && lastModified.getTime() < cutoff) {
          await client.removeObject(bucket, name)
          removed++
        }
      }
      // Parts of an upload a crash cut short stay in the bucket (and are billed) until aborted.
      // Not every S3 server lists them (s3rver does not); a bucket lifecycle rule
      // (AbortIncompleteMultipartUpload) covers those.
      try {
        for await (const upload of client.listIncompleteUploads(bucket, '', true)) {
          const { key, initiated } = upload as { key: string; initiated?: Date }
          if (initiated && initiated.getTime() < cutoff) {
            await client.removeIncompleteUpload(bucket, key)
            removed++
          }
        }
      } catch (err) {
        if ((err as { code?: string }).code !== 'NotImplemented') throw err
      }
      return removed
    },
    async close() {
      pingAgent.destroy()
      dataAgent.destroy()
    },
  }
}
