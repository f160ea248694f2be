import { ErrorText } from './errorText.tsx'
import { useEffect, useRef, useState } from 'preact/hooks'
import { api, ApiError, pn, request, upload } from './api.ts'
import { fieldOf, messageOf } from './fieldError.ts'
import { ITEM_TYPES } from './itemsPage.tsx'
import { canUseFiles, canWrite, listen } from './live.ts'
import type { BomChild, HistoryEntry, Item, Revision } from './types.ts'
import { ColumnHeads } from './columnHeads.tsx'

const actorName = (actor: { name: string } | null | undefined) => actor?.name ?? 'unknown'
const time = (iso: string) => new Date(iso).toLocaleString()

/** A stale edit: what the server holds now and who changed it. */
interface Conflict {
  current: Item
}

function ItemFields({
  item,
  onSaved,
  onConflict,
}: {
  item: Item
  onSaved: (item: Item) => void
  onConflict: (c: Conflict) => void
}) {
  const [draft, setDraft] = useState({
    description: item.description,
    item_type: item.item_type,
    properties: JSON.stringify(item.properties, null, 2),
  })
  const [editing, setEditing] = useState(false)
  const [error, setError] = useState<{ field: string | null; message: string } | null>(null)
  // What the edit started from: a save says so with If-Match, so nobody's change is lost.
  const base = useRef(item.version)
  useEffect(() => {
    if (!editing) {
      setDraft({
        description: item.description,
        item_type: item.item_type,
        properties: JSON.stringify(item.properties, null, 2),
      })
      base.current = item.version
    }
  }, [item, editing])

  const save = async (ev: Event) => {
    ev.preventDefault()
    let properties: unknown
    try {
      properties = JSON.parse(draft.properties)
    } catch {
      setError({ field: 'properties', message: 'properties must be a JSON object' })
      return
    }
    try {
      const saved = await api<Item>(`/api/items/${pn(item.part_number)}`, {
        method: 'PATCH',
        headers: { 'if-match': `"${base.current}"` },
        body: { description: draft.description, item_type: draft.item_type, properties },
      })
      setEditing(false)
      setError(null)
      onSaved(saved)
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) {
        onConflict({ current: err.body.current as Item })
        return
      }
      setError({
        field: fieldOf(err, ['description', 'item_type', 'properties']),
        message: messageOf(err),
      })
    }
  }
  const fieldError = (field: string) => (
    <ErrorText message={error?.field === field && error.message} />
  )
  return (
    <form onSubmit={save} aria-label="Item fields" class="fields">
      <label for="description">Description</label>
      <input
        id="description"
        value={draft.description}
        disabled={!canWrite.value}
        onInput={(e) => {
          setEditing(true)
          setDraft({ ...draft, description: e.currentTarget.value })
        }}
      />
      {fieldError('description')}
      <label for="item_type">Type</label>
      <select
        id="item_type"
        value={draft.item_type}
        disabled={!canWrite.value}
        onChange={(e) => {
          setEditing(true)
          setDraft({ ...draft, item_type: e.currentTarget.value })
        }}
      >
        {ITEM_TYPES.map((t) => (
          <option value={t}>{t}</option>
        ))}
      </select>
      {fieldError('item_type')}
      <label for="properties">Properties (JSON)</label>
      <textarea
        id="properties"
        rows={6}
        value={draft.properties}
        disabled={!canWrite.value}
        onInput={(e) => {
          setEditing(true)
          setDraft({ ...draft, properties: e.currentTarget.value })
        }}
      />
      {fieldError('properties')}
      <ErrorText message={error && error.field === null && error.message} />
      <button type="submit" disabled={!canWrite.value || !editing}>
        Save
      </button>
      {editing && (
        <button type="button" onClick={() => setEditing(false)}>
          Discard
        </button>
      )}
    </form>
  )
}

function Revisions({
  item,
  revisions,
  onChanged,
}: {
  item: Item
  revisions: Revision[]
  onChanged: () => void
}) {
  const [comment, setComment] = useState('')
  const [file, setFile] = useState<File | null>(null)
  const [progress, setProgress] = useState<number | null>(null)
  const [error, setError] = useState<string | null>(null)
  const submit = async (ev: Event) => {
    ev.preventDefault()
    setError(null)
    try {
      if (file) {
        const form = new FormData()
        form.append('comment', comment)
        form.append('file', file)
        setProgress(0)
        await upload(`/api/items/${pn(item.part_number)}/revisions`, form, setProgress)
      } else {
        await api(`/api/items/${pn(item.part_number)}/revisions`, {
          method: 'POST',
          body: { comment },
        })
      }
      setComment('')
      setFile(null)
      onChanged()
    } catch (err) {
      setError(messageOf(err))
    } finally {
      setProgress(null)
    }
  }
  return (
    <section aria-labelledby="revisions-heading">
      <h3 id="revisions-heading">Revisions</h3>
      <table>
        <ColumnHeads names={['#', 'Comment', 'File', 'By', 'When']} />
        <tbody>
          {revisions.map((r) => (
            <tr key={r.revision_number}>
              <td>{r.revision_number}</td>
              <td>{r.comment}</td>
              <td>
                {r.file &&
                  (canUseFiles.value ? (
                    <a
                      href={`/api/items/${pn(item.part_number)}/revisions/${r.revision_number}/file`}
                      download={r.file.name}
                    >
                      {r.file.name}
                    </a>
                  ) : (
                    <span>{r.file.name}</span>
                  ))}
              </td>
              <td>{actorName(r.created_by)}</td>
              <td>{time(r.created_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <form onSubmit={submit} aria-label="New revision">
        <label for="rev-comment">Comment</label>
        <input
          id="rev-comment"
          value={comment}
          onInput={(e) => setComment(e.currentTarget.value)}
          disabled={!canWrite.value}
        />
        <label for="rev-file">File</label>
        <input
          id="rev-file"
          type="file"
          disabled={!canWrite.value || !canUseFiles.value}
          onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)}
        />
        {progress !== null && <progress value={progress} max={1} aria-label="Upload progress" />}
        <ErrorText message={error} />
        <button
          type="submit"
          disabled={!canWrite.value || (file !== null && !canUseFiles.value) || progress !== null}
        >
          Add revision
        </button>
      </form>
    </section>
  )
}

function Bom({
  item,
  children,
  onChanged,
}: {
  item: Item
  children: BomChild[]
  onChanged: () => void
}) {
  const [line, setLine] = useState({ child: '', quantity: '1' })
  const [error, setError] = useState<{ field: string | null; message: string } | null>(null)
  const base = `/api/items/${pn(item.part_number)}/bom`
  const run = async (call: () => Promise<unknown>) => {
    try {
      await call()
      setError(null)
      onChanged()
    } catch (err) {
      setError({ field: fieldOf(err, ['child', 'quantity']), message: messageOf(err) })
    }
  }
  const add = (ev: Event) => {
    ev.preventDefault()
    void run(() =>
      api(base, { method: 'POST', body: { child: line.child, quantity: Number(line.quantity) } }),
    )
  }
  return (
    <section aria-labelledby="bom-heading">
      <h3 id="bom-heading">Bill of materials</h3>
      <table>
        <ColumnHeads names={['Child', 'Description', 'Quantity']} actions />
        <tbody>
          {children.map((c) => (
            <tr key={c.part_number}>
              <td>
                <a href={`#/items/${pn(c.part_number)}`}>{c.part_number}</a>
              </td>
              <td>{c.description}</td>
              <td>
                <input
                  type="number"
                  aria-label={`Quantity of ${c.part_number}`}
                  value={c.quantity}
                  min={0}
                  step="any"
                  disabled={!canWrite.value}
                  onChange={(e) => {
                    const quantity = Number(e.currentTarget.value)
                    void run(() =>
                      api(`${base}/${pn(c.part_number)}`, { method: 'PUT', body: { quantity } }),
                    )
                  }}
                />
              </td>
              <td>
                <button
                  type="button"
                  disabled={!canWrite.value}
                  onClick={() =>
                    void run(() => api(`${base}/${pn(c.part_number)}`, { method: 'DELETE' }))
                  }
                >
                  Remove {c.part_number}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form onSubmit={add} aria-label="Add BOM line">
        <label for="bom-child">Child part number</label>
        <input
          id="bom-child"
          value={line.child}
          onInput={(e) => setLine({ ...line, child: e.currentTarget.value })}
          disabled={!canWrite.value}
          required
        />
        <label for="bom-quantity">Quantity</label>
        <input
          id="bom-quantity"
          type="number"
          min={0}
          step="any"
          value={line.quantity}
          onInput={(e) => setLine({ ...line, quantity: e.currentTarget.value })}
          disabled={!canWrite.value}
        />
        <ErrorText message={error && error.message} testId="bom-error" />
        <button type="submit" disabled={!canWrite.value}>
          Add
        </button>
      </form>
    </section>
  )
}

/** What an event says beyond whom it is about, by whom and which version (shown beside). */
function changedFields(data: Record<string, unknown>): Record<string, unknown> {
  const shownBeside = new Set(['part_number', 'actor', 'version'])
  return Object.fromEntries(Object.entries(data).filter(([key]) => !shownBeside.has(key)))
}

function History({ entries }: { entries: HistoryEntry[] }) {
  return (
    <section aria-labelledby="history-heading">
      <h3 id="history-heading">History</h3>
      <ol class="history">
        {entries.map((e) => (
          <li key={e.id}>
            <span class="event-type">{e.type}</span>
            {typeof e.data.version === 'number' && ` (version ${e.data.version})`} by{' '}
            {actorName(e.actor)}, {time(e.created_at)}
            <code>{JSON.stringify(changedFields(e.data))}</code>
          </li>
        ))}
      </ol>
    </section>
  )
}

/** One item: fields, revisions, BOM and history, all following the stream. */
export function ItemPage({ partNumber }: { partNumber: string }) {
  const [item, setItem] = useState<Item | null>(null)
  const [revisions, setRevisions] = useState<Revision[]>([])
  const [bom, setBom] = useState<BomChild[]>([])
  const [history, setHistory] = useState<HistoryEntry[]>([])
  const [gone, setGone] = useState<string | null>(null)
  const [conflict, setConflict] = useState<Conflict | null>(null)
  // A new key starts the fields over from the item: after a conflict, only when asked.
  const [fieldsKey, setFieldsKey] = useState(0)
  const path = `/api/items/${pn(partNumber)}`

  const reload = async () => {
    try {
      const [i, r, b, h] = await Promise.all([
        request<Item>(path).then((res) => res.data),
        api<{ revisions: Revision[] }>(`${path}/revisions`),
        api<{ children: BomChild[] }>(`${path}/bom`),
        api<{ events: HistoryEntry[] }>(`${path}/history?limit=50`).catch(() => ({ events: [] })),
      ])
      setItem(i)
      setRevisions(r.revisions)
      setBom(b.children)
      setHistory(h.events)
      setGone(null)
    } catch (err) {
      setGone(
        err instanceof ApiError && err.status === 404
          ? `Item ${partNumber} does not exist (any more).`
          : messageOf(err),
      )
    }
  }
  useEffect(() => {
    setItem(null)
    void reload()
  }, [partNumber])
  useEffect(
    () =>
      listen({
        event: (event) => {
          if (event.data.part_number === partNumber) {
            if (event.type === 'item.deleted') setGone(`Item ${partNumber} was deleted.`)
            else void reload()
          } else if (event.type === 'item.updated' || event.type === 'item.deleted') {
            // A child's description shows in this BOM.
            if (bom.some((c) => c.part_number === event.data.part_number)) void reload()
          }
        },
        reset: () => void reload(),
      }),
    [partNumber, bom],
  )

  const remove = async () => {
    if (!item || !confirm(`Delete ${item.part_number}?`)) return
    try {
      await api(path, { method: 'DELETE', headers: { 'if-match': `"${item.version}"` } })
      location.hash = '#/items'
    } catch (err) {
      if (err instanceof ApiError && err.status === 412)
        setConflict({ current: err.body.current as Item })
      else setGone(messageOf(err))
    }
  }

  if (gone) {
    return (
      <section>
        <p role="alert">{gone}</p>
        <a href="#/items">Back to the items</a>
      </section>
    )
  }
  if (!item) return <p class="loading">Loading…</p>
  return (
    <section aria-labelledby="item-heading">
      <h2 id="item-heading">{item.part_number}</h2>
      <p class="meta">
        version {item.version}; changed {time(item.updated_at)} by {actorName(item.updated_by)}
      </p>
      {conflict && (
        <div class="banner conflict" role="alert" data-testid="conflict">
          <p>
            {actorName(conflict.current.updated_by)} changed this item (now version{' '}
            {conflict.current.version}) while you were editing it; your change was not saved.
          </p>
          <button
            type="button"
            onClick={() => {
              setConflict(null)
              setItem(conflict.current)
              setFieldsKey((k) => k + 1)
            }}
          >
            Reload the item
          </button>
        </div>
      )}
      <ItemFields key={fieldsKey} item={item} onSaved={setItem} onConflict={setConflict} />
      <button type="button" class="danger" onClick={remove} disabled={!canWrite.value}>
        Delete item
      </button>
      <Revisions item={item} revisions={revisions} onChanged={reload} />
      <Bom item={item} children={bom} onChanged={reload} />
      <History entries={history} />
    </section>
  )
}
