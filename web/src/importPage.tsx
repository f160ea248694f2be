import { ErrorText } from './errorText.tsx'
import { useState } from 'preact/hooks'
import { ApiError, request } from './api.ts'
import { messageOf } from './fieldError.ts'
import { canWrite } from './live.ts'
import { ColumnHeads } from './columnHeads.tsx'

interface ImportResult {
  dry_run: boolean
  created: number
  updated: number
  unchanged: number
  items: { row: number; part_number: string; action: string }[]
}

interface BadCell {
  row: number
  column: string
  reason: string
}

const formatOf = (file: File) => (file.name.toLowerCase().endsWith('.ods') ? 'ods' : 'csv')

/** A sheet, tried first (dry run), then applied; export links beside. */
export function ImportPage() {
  const [file, setFile] = useState<File | null>(null)
  const [result, setResult] = useState<ImportResult | null>(null)
  const [bad, setBad] = useState<BadCell[]>([])
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState<'checking' | 'applying' | null>(null)

  const send = async (dryRun: boolean) => {
    if (!file) return
    setBusy(dryRun ? 'checking' : 'applying')
    setError(null)
    setBad([])
    try {
      const form = new FormData()
      form.append('file', file)
      const { data } = await request<ImportResult>(
        `/api/import/${formatOf(file)}?dry_run=${dryRun}`,
        { method: 'POST', body: form },
      )
      setResult(data)
    } catch (err) {
      setResult(null)
      if (err instanceof ApiError && Array.isArray(err.body.errors))
        setBad(err.body.errors as BadCell[])
      setError(messageOf(err))
    } finally {
      setBusy(null)
    }
  }

  return (
    <section aria-labelledby="import-heading">
      <h2 id="import-heading">Import and export</h2>
      <form
        onSubmit={(ev) => {
          ev.preventDefault()
          void send(true)
        }}
        aria-label="Import a sheet"
      >
        <label for="sheet">CSV or ODS file</label>
        <input
          id="sheet"
          type="file"
          accept=".csv,.ods,text/csv,application/vnd.oasis.opendocument.spreadsheet"
          onChange={(e) => {
            setFile(e.currentTarget.files?.[0] ?? null)
            setResult(null)
            setBad([])
            setError(null)
          }}
        />
        <button type="submit" disabled={!file || busy !== null || !canWrite.value}>
          Check (dry run)
        </button>
      </form>
      {busy && (
        <p role="status">
          <progress
            aria-label={busy === 'checking' ? 'Checking the sheet' : 'Applying the sheet'}
          />{' '}
          {busy === 'checking' ? 'Checking…' : 'Applying…'}
        </p>
      )}
      <ErrorText message={error} />
      {bad.length > 0 && (
        <table data-testid="bad-cells">
          <caption>Bad cells: nothing was written</caption>
          <ColumnHeads names={['Row', 'Column', 'Why']} />
          <tbody>
            {bad.map((b) => (
              <tr key={`${b.row}:${b.column}`}>
                <td>{b.row}</td>
                <td>{b.column}</td>
                <td>{b.reason}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {result && (
        <div data-testid="import-result">
          <p>
            {result.dry_run ? 'Would create' : 'Created'} {result.created},{' '}
            {result.dry_run ? 'update' : 'updated'} {result.updated}, unchanged {result.unchanged}.
          </p>
          {result.dry_run && (
            <button
              type="button"
              onClick={() => void send(false)}
              disabled={busy !== null || !canWrite.value}
            >
              Apply
            </button>
          )}
        </div>
      )}
      <h3>Export</h3>
      <p>
        <a href="/api/export/items.csv" download>
          Export CSV
        </a>{' '}
        <a href="/api/export/items.ods" download>
          Export ODS
        </a>
      </p>
    </section>
  )
}
