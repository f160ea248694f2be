/**
 * The item list as the console shows it: the pages loaded so far (part-number order, as
 * `GET /api/items` pages them), kept current from the event stream without refetching.
 */

export interface ListedItem {
  part_number: string
  description: string
  item_type: string
  properties?: Record<string, unknown>
  version?: number
  updated_at?: string
}

export interface ListQuery {
  q: string
  item_type: string
}

export interface ListState {
  items: ListedItem[]
  /** Null once every page has been loaded. */
  nextCursor: string | null
}

/** What an event did to the list, for the page to highlight or fetch. */
export type ListChange =
  | { kind: 'none' }
  | { kind: 'changed'; partNumber: string }
  | { kind: 'removed'; partNumber: string }
  /** An update made an item match that the list does not hold: the page fetches it. */
  | { kind: 'fetch'; partNumber: string }

/** The server's filter: `q` in the part number or description, case-insensitive. */
export function matches(
  item: Pick<ListedItem, 'part_number' | 'description' | 'item_type'>,
  query: ListQuery,
): boolean {
  if (query.item_type && item.item_type !== query.item_type) return false
  if (!query.q) return true
  const q = query.q.toLowerCase()
  return item.part_number.toLowerCase().includes(q) || item.description.toLowerCase().includes(q)
}

/** Whether a part number falls within the pages loaded so far (later ones come with paging). */
function withinLoaded(state: ListState, partNumber: string): boolean {
  const last = state.items[state.items.length - 1]
  return state.nextCursor === null || (last !== undefined && partNumber < last.part_number)
}

/** Puts an item in its part-number place, replacing the one there. */
export function place(state: ListState, item: ListedItem): ListState {
  const items = state.items.filter((i) => i.part_number !== item.part_number)
  if (!withinLoaded({ ...state, items }, item.part_number)) return { ...state, items }
  let at = items.findIndex((i) => i.part_number > item.part_number)
  if (at < 0) at = items.length
  items.splice(at, 0, item)
  return { ...state, items }
}

function remove(state: ListState, partNumber: string): ListState {
  return { ...state, items: state.items.filter((i) => i.part_number !== partNumber) }
}

const ITEM_FIELDS = ['description', 'item_type', 'properties', 'version', 'updated_at'] as const

/** Applies one stored event to the list. */
export function applyEvent(
  state: ListState,
  query: ListQuery,
  event: { type: string; data: Record<string, unknown> },
): { state: ListState; change: ListChange } {
  const partNumber = event.data.part_number
  if (typeof partNumber !== 'string') return { state, change: { kind: 'none' } }
  const current = state.items.find((i) => i.part_number === partNumber)
  switch (event.type) {
    case 'item.created': {
      const item = event.data as unknown as ListedItem
      if (!matches(item, query) || !withinLoaded(state, partNumber)) {
        return { state, change: { kind: 'none' } }
      }
      return { state: place(state, item), change: { kind: 'changed', partNumber } }
    }
    case 'item.updated': {
      if (!current) {
        // Only the changed fields travel: an item that starts to match must be fetched.
        const couldMatch = 'description' in event.data || 'item_type' in event.data
        return {
          state,
          change:
            couldMatch && withinLoaded(state, partNumber)
              ? { kind: 'fetch', partNumber }
              : { kind: 'none' },
        }
      }
      const next: ListedItem = { ...current }
      for (const field of ITEM_FIELDS) {
        if (field in event.data)
          (next as unknown as Record<string, unknown>)[field] = event.data[field]
      }
      if (!matches(next, query))
        return { state: remove(state, partNumber), change: { kind: 'removed', partNumber } }
      return { state: place(state, next), change: { kind: 'changed', partNumber } }
    }
    case 'item.deleted':
      if (!current) return { state, change: { kind: 'none' } }
      return { state: remove(state, partNumber), change: { kind: 'removed', partNumber } }
    default:
      return { state, change: { kind: 'none' } }
  }
}
