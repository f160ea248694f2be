import http from 'node:http'
import https from 'node:https'
import { Client } from 'minio'
import type { MinioConfig } from '../config.js'
import type { ObjectStorage } from './objectStorage.js'

/**
 * MinIO / S3 storage through the `minio` client. The client has no timeout of its own, so
 * pings run on a dedicated agent whose sockets are destroyed when the caller's signal aborts:
 * a black-holed endpoint costs one socket for one timeout, never a hung ping.
 */
export function minioStorage(config: MinioConfig): ObjectStorage {
  const AgentClass = config.use_ssl ? https.Agent : http.Agent
  const pingAgent = new AgentClass({ keepAlive: false })
  const pingClient = new Client({
    endPoint: config.endpoint,
    port: config.port,
    useSSL: config.use_ssl,
    accessKey: config.access_key,
    secretKey: config.secret_key,
    region: config.region,
    transportAgent: pingAgent,
  })

  return {
    kind: 'minio',
    async ping(signal) {
      const abort = () => pingAgent.destroy()
      signal.addEventListener('abort', abort, { once: true })
      try {
        // A fresh server has no bucket yet; creating it is part of being ready for files.
        if (!(await pingClient.bucketExists(config.bucket))) {
          await pingClient.makeBucket(config.bucket, config.region)
        }
      } finally {
        signal.removeEventListener('abort', abort)
      }
    },
    async close() {
      pingAgent.destroy()
    },
  }
}
