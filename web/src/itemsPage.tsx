import { ErrorText } from './errorText.tsx'
import { useEffect, useRef, useState } from 'preact/hooks'
import { api, ApiError } from './api.ts'
import { fieldOf, messageOf } from './fieldError.ts'
import { applyEvent, type ListedItem, type ListQuery, type ListState, place } from './itemList.ts'
import { canWrite, listen } from './live.ts'
import { itemHref } from './route.ts'
import { useHighlights } from './highlights.ts'
import { ColumnHeads } from './columnHeads.tsx'

export const ITEM_TYPES = ['part', 'assembly', 'drawing', 'document'] as const
const PAGE = 100

interface Page {
  items: ListedItem[]
  next_cursor: string | null
}

function listUrl(query: ListQuery, cursor: string | null): string {
  const params = new URLSearchParams({ limit: String(PAGE) })
  if (query.q) params.set('q', query.q)
  if (query.item_type) params.set('item_type', query.item_type)
  if (cursor) params.set('cursor', cursor)
  return `/api/items?${params}`
}

function CreateItem({ onCreated }: { onCreated: (item: ListedItem) => void }) {
  const [open, setOpen] = useState(false)
  const [form, setForm] = useState({ part_number: '', description: '', item_type: 'part' })
  const [error, setError] = useState<{ field: string | null; message: string } | null>(null)
  if (!open) {
    return (
      <button type="button" onClick={() => setOpen(true)} disabled={!canWrite.value}>
        New item
      </button>
    )
  }
  const submit = async (ev: Event) => {
    ev.preventDefault()
    try {
      const item = await api<ListedItem>('/api/items', { method: 'POST', body: form })
      onCreated(item)
      setForm({ part_number: '', description: '', item_type: 'part' })
      setError(null)
      setOpen(false)
    } catch (err) {
      setError({
        field: fieldOf(err, ['part_number', 'description', 'item_type']),
        message: messageOf(err),
      })
    }
  }
  const fieldError = (field: string) => (
    <ErrorText message={error?.field === field && error.message} id={`new-${field}-error`} />
  )
  return (
    <form class="create" onSubmit={submit} aria-label="New item">
      <label for="new-part_number">Part number</label>
      <input
        id="new-part_number"
        value={form.part_number}
        onInput={(e) => setForm({ ...form, part_number: e.currentTarget.value })}
        required
      />
      {fieldError('part_number')}
      <label for="new-description">Description</label>
      <input
        id="new-description"
        value={form.description}
        onInput={(e) => setForm({ ...form, description: e.currentTarget.value })}
      />
      {fieldError('description')}
      <label for="new-item_type">Type</label>
      <select
        id="new-item_type"
        value={form.item_type}
        onChange={(e) => setForm({ ...form, item_type: e.currentTarget.value })}
      >
        {ITEM_TYPES.map((t) => (
          <option value={t}>{t}</option>
        ))}
      </select>
      {fieldError('item_type')}
      <ErrorText message={error && error.field === null && error.message} />
      <button type="submit" disabled={!canWrite.value}>
        Create
      </button>
      <button type="button" onClick={() => setOpen(false)}>
        Cancel
      </button>
    </form>
  )
}

/** Search, filter and page through items; the list follows the event stream. */
export function ItemsPage() {
  const [query, setQuery] = useState<ListQuery>({ q: '', item_type: '' })
  const [list, setList] = useState<ListState>({ items: [], nextCursor: null })
  const [error, setError] = useState<string | null>(null)
  const [loading, setLoading] = useState(true)
  const highlights = useHighlights()
  // Events read the newest list and query, not the ones of the render that subscribed.
  const current = useRef({ list, query })
  current.current = { list, query }

  const load = async (q: ListQuery, signal?: AbortSignal) => {
    setLoading(true)
    try {
      const page = await api<Page>(listUrl(q, null), { signal })
      setList({ items: page.items, nextCursor: page.next_cursor })
      setError(null)
    } catch (err) {
      if (!signal?.aborted) setError(messageOf(err))
    } finally {
      if (!signal?.aborted) setLoading(false)
    }
  }

  useEffect(() => {
    const controller = new AbortController()
    const timer = setTimeout(() => void load(query, controller.signal), 200)
    return () => {
      clearTimeout(timer)
      controller.abort()
    }
  }, [query.q, query.item_type])

  useEffect(
    () =>
      listen({
        event: (event) => {
          const { list: before, query: q } = current.current
          const { state, change } = applyEvent(before, q, event)
          if (state !== before) setList(state)
          if (change.kind === 'changed') highlights.mark(change.partNumber)
          if (change.kind === 'fetch') {
            api<ListedItem>(`/api/items/${encodeURIComponent(change.partNumber)}`).then(
              (item) => {
                if (!current.current.list.items.some((i) => i.part_number === item.part_number)) {
                  setList(place(current.current.list, item))
                  highlights.mark(item.part_number)
                }
              },
              () => {},
            )
          }
        },
        reset: () => void load(current.current.query),
      }),
    [],
  )

  const more = async () => {
    if (!list.nextCursor) return
    try {
      const page = await api<Page>(listUrl(query, list.nextCursor))
      setList((prev) => ({
        items: [
          ...prev.items,
          ...page.items.filter((i) => !prev.items.some((p) => p.part_number === i.part_number)),
        ],
        nextCursor: page.next_cursor,
      }))
    } catch (err) {
      setError(err instanceof ApiError ? err.message : messageOf(err))
    }
  }

  return (
    <section aria-labelledby="items-heading">
      <h2 id="items-heading">Items</h2>
      <div class="toolbar">
        <label for="search">Search</label>
        <input
          id="search"
          type="search"
          value={query.q}
          onInput={(e) => setQuery({ ...query, q: e.currentTarget.value })}
          placeholder="part number or description"
        />
        <label for="type-filter">Type</label>
        <select
          id="type-filter"
          value={query.item_type}
          onChange={(e) => setQuery({ ...query, item_type: e.currentTarget.value })}
        >
          <option value="">all</option>
          {ITEM_TYPES.map((t) => (
            <option value={t}>{t}</option>
          ))}
        </select>
        <CreateItem onCreated={(item) => highlights.mark(item.part_number)} />
      </div>
      <ErrorText message={error} />
      <table class="items" aria-busy={loading}>
        <ColumnHeads names={['Part number', 'Description', 'Type']} />
        <tbody>
          {list.items.map((item) => (
            <tr
              key={item.part_number}
              class={highlights.has(item.part_number) ? 'changed' : undefined}
              data-pn={item.part_number}
            >
              <td>
                <a href={itemHref(item.part_number)}>{item.part_number}</a>
              </td>
              <td>{item.description}</td>
              <td>{item.item_type}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!loading && list.items.length === 0 && <p>No items.</p>}
      {list.nextCursor && (
        <button type="button" onClick={more}>
          Load more
        </button>
      )}
    </section>
  )
}
