import { signal } from '@preact/signals'

/** The console's pages live in the URL's fragment, so the server serves one index.html. */
export type Route =
  | { page: 'items' }
  | { page: 'item'; partNumber: string }
  | { page: 'import' }
  | { page: 'activity' }
  | { page: 'admin' }

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#\/?/, '')
  const [first, ...rest] = path.split('/')
  if (first === 'items' && rest.length > 0 && rest[0])
    return { page: 'item', partNumber: decodeURIComponent(rest.join('/')) }
  if (first === 'import' || first === 'activity' || first === 'admin') return { page: first }
  return { page: 'items' }
}

export const route = signal<Route>(parseRoute(location.hash))
window.addEventListener('hashchange', () => (route.value = parseRoute(location.hash)))

export const itemHref = (partNumber: string): string => `#/items/${encodeURIComponent(partNumber)}`
