/** The small part of s3rver 3.7 (untyped CommonJS) that the tests use. */
declare module 's3rver' {
  import type { RequestListener } from 'node:http'

  export interface S3rverOptions {
    address?: string
    port?: number
    silent?: boolean
    /** Where buckets and objects are kept on disk. */
    directory?: string
    resetOnClose?: boolean
    allowMismatchedSignatures?: boolean
    vhostBuckets?: boolean
    configureBuckets?: { name: string; configs?: (string | Buffer)[] }[]
  }

  export default class S3rver {
    constructor(options?: S3rverOptions)
    /** A request handler for http.createServer (the S3 API over the configured directory). */
    callback(): RequestListener
    reset(): void
  }
}
