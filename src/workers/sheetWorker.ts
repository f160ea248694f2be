import { type CheckedImport, checkImport, type SheetFormat } from '../domain/importRows.js'
import { AppError } from '../domain/errors.js'
import { csvLines } from '../sheets/csv.js'
import {
  type DeflatedPiece,
  deflateContentPiece,
  ODS_CONTENT_TAIL,
  odsContentHead,
  odsRowsXml,
} from '../sheets/ods.js'
import type { Cell } from '../sheets/sheet.js'

/**
 * The CPU-bound work silo hands to its worker threads, one task at a time: everything here runs
 * in a worker thread of the sheet pool (sheetPool.ts), never on the thread that serves requests.
 */

export type SheetTask =
  | { kind: 'checkImport'; format: SheetFormat; bytes: Uint8Array }
  | { kind: 'csvRows'; rows: Cell[][] }
  | {
      kind: 'odsPiece'
      /** For the first piece: the table's width and name. */
      head?: { columns: number; sheetName: string }
      rows: Cell[][]
      last: boolean
      before: { crc: number; size: number }
    }

/**
 * A rejected import crosses the thread boundary as plain data: structured cloning keeps an
 * Error's message but neither its class nor its fields.
 */
export interface Rejected {
  rejected: { status: number; code: string; message: string; details: Record<string, unknown> }
}

export type CheckImportOutcome = CheckedImport | Rejected

export async function runSheetTask(
  task: SheetTask,
): Promise<CheckImportOutcome | string | DeflatedPiece> {
  switch (task.kind) {
    case 'checkImport':
      try {
        return await checkImport(task.format, task.bytes)
      } catch (err) {
        if (!(err instanceof AppError)) throw err
        const { status, code, message, details } = err
        return { rejected: { status, code, message, details } }
      }
    case 'csvRows':
      return csvLines(task.rows)
    case 'odsPiece': {
      const head = task.head ? odsContentHead(task.head.columns, task.head.sheetName) : ''
      const xml = head + odsRowsXml(task.rows) + (task.last ? ODS_CONTENT_TAIL : '')
      return deflateContentPiece(xml, task.before, task.last)
    }
  }
}

/** The entry point of a sheet worker thread: piscina calls the default export per task. */
export default runSheetTask
