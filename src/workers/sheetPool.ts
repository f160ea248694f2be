import { availableParallelism } from 'node:os'
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Piscina } from 'piscina'
import type { CheckedImport, SheetFormat } from '../domain/importRows.js'
import { AppError } from '../domain/errors.js'
import type { DeflatedPiece } from '../sheets/ods.js'
import type { Cell } from '../sheets/sheet.js'
import type { CheckImportOutcome, SheetTask } from './sheetWorker.js'

/**
 * The worker threads that read imports and encode exports, so that no file, however hostile,
 * holds the event loop that serves streams and probes. A few threads (parsing is CPU-bound and
 * the machine also runs the server), a bounded queue of imports (a full one answers 503 with
 * Retry-After), and threads that exit when idle.
 */

const THREADS = Math.min(2, availableParallelism())
/**
 * Tasks waiting for a thread beyond which an import is refused. Export pages are never refused:
 * an export has at most one page waiting, and refusing it would cut a download under way.
 */
const MAX_QUEUED_IMPORTS = 16
const IDLE_TIMEOUT_MS = 30_000
/**
 * Heap of one worker. Readers keep only checked rows, so the largest valid import stays well
 * below it; a file that needs more (a giant comment in content.xml) ends its worker, not the
 * server.
 */
const WORKER_HEAP_MB = 512
const RETRY_AFTER_S = '5'

// Tests run the TypeScript sources, production the built dist/: the worker is the file beside
// this one with the same extension, and a .ts worker is loaded through tsx (a devDependency).
const here = fileURLToPath(import.meta.url)
const workerFile = new URL(`./sheetWorker${extname(here)}`, import.meta.url)
const workerExecArgv = extname(here) === '.ts' ? ['--import', 'tsx'] : []

function busy(): AppError {
  return new AppError(
    503,
    'server_busy',
    'too many imports and exports are waiting for a worker; retry shortly',
    { 'retry-after': RETRY_AFTER_S },
  )
}

function tooMuchMemory(): AppError {
  return new AppError(
    413,
    'payload_too_large',
    'reading the file needs more memory than an import may use; split it into smaller files',
  )
}

export class SheetPool {
  private readonly pool = new Piscina<SheetTask, unknown>({
    filename: workerFile.href,
    execArgv: workerExecArgv,
    minThreads: 0,
    maxThreads: THREADS,
    idleTimeout: IDLE_TIMEOUT_MS,
    resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB },
  })

  /**
   * Reads and checks an import file. `bytes` is handed over to the worker without a copy where
   * it owns its whole buffer, and cannot be used afterwards. A rejected file throws its 400;
   * when `signal` aborts, the worker is stopped and the abort's reason is thrown.
   */
  async checkImport(
    format: SheetFormat,
    bytes: Uint8Array,
    signal: AbortSignal,
  ): Promise<CheckedImport> {
    const ownsBuffer = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    // Checked here rather than with piscina's maxQueue, which would refuse export pages too.
    if (this.pool.queueSize >= MAX_QUEUED_IMPORTS) throw busy()
    const outcome = (await this.run(
      { kind: 'checkImport', format, bytes },
      { signal, transferList: ownsBuffer ? [bytes.buffer as ArrayBuffer] : [] },
    )) as CheckImportOutcome
    if ('rejected' in outcome) {
      const { status, code, message, details } = outcome.rejected
      throw new AppError(status, code, message, {}, details)
    }
    return outcome
  }

  /** Rows as CSV text. */
  async csvRows(rows: Cell[][]): Promise<string> {
    return (await this.run({ kind: 'csvRows', rows })) as string
  }

  /** A deflated piece of an ODS file's content.xml (see deflateContentPiece). */
  async odsPiece(
    task: Omit<Extract<SheetTask, { kind: 'odsPiece' }>, 'kind'>,
  ): Promise<DeflatedPiece> {
    return (await this.run({ kind: 'odsPiece', ...task })) as DeflatedPiece
  }

  /** Stops the threads; tasks still running fail. */
  async close(): Promise<void> {
    await this.pool.destroy()
  }

  private async run(
    task: SheetTask,
    options: { signal?: AbortSignal; transferList?: ArrayBuffer[] } = {},
  ): Promise<unknown> {
    try {
      return await this.pool.run(task, options)
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason
      if ((err as { code?: unknown }).code === 'ERR_WORKER_OUT_OF_MEMORY') throw tooMuchMemory()
      throw err
    }
  }
}
