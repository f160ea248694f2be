import { Pool } from 'undici'
import { ItemWriter } from '../lib/itemWriter.js'

/**
 * Publishes a prepared payload per part number to a peer's publish location (nchan's
 * publisher, the better-sse server's /pub). It is an ItemWriter so that the harness's
 * publishAtRate / publishBurst drive every server on the same schedule.
 */
export class PayloadWriter extends ItemWriter {
  private readonly publisher: Pool

  constructor(
    baseUrl: string,
    private readonly path: string,
    private readonly payloadFor: (partNumber: string) => string,
    connections = 4,
  ) {
    // The parent's pool (for silo's /api/items) is never used, so it never connects.
    super(baseUrl, '', connections)
    this.publisher = new Pool(baseUrl, { connections, pipelining: 1 })
  }

  override async create(partNumber: string): Promise<void> {
    const { statusCode, body } = await this.publisher.request({
      method: 'POST',
      path: this.path,
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: this.payloadFor(partNumber),
    })
    const text = await body.text()
    if (statusCode < 200 || statusCode > 202) {
      throw new Error(`POST ${this.path} ${partNumber}: HTTP ${statusCode} ${text.slice(0, 200)}`)
    }
  }

  override async close(): Promise<void> {
    await Promise.all([super.close(), this.publisher.close()])
  }
}
