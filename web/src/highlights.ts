import { useEffect, useRef, useState } from 'preact/hooks'

const HIGHLIGHT_MS = 2000

/** Rows that just changed stay marked for a moment, so a person sees what moved. */
export function useHighlights(): { mark(key: string): void; has(key: string): boolean } {
  const [marked, setMarked] = useState<ReadonlySet<string>>(new Set())
  const timers = useRef(new Map<string, ReturnType<typeof setTimeout>>())
  useEffect(() => () => timers.current.forEach((t) => clearTimeout(t)), [])
  return {
    mark(key) {
      clearTimeout(timers.current.get(key))
      setMarked((prev) => new Set(prev).add(key))
      timers.current.set(
        key,
        setTimeout(() => {
          timers.current.delete(key)
          setMarked((prev) => {
            const next = new Set(prev)
            next.delete(key)
            return next
          })
        }, HIGHLIGHT_MS),
      )
    },
    has: (key) => marked.has(key),
  }
}
