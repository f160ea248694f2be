import { setTimeout as delay } from 'node:timers/promises'

/**
 * Resolves with `check`'s value once it is truthy, checking again every `intervalMs` only while
 * it is not; fails naming `what` after `timeoutMs`. For states no event announces (a database
 * coming back, a file appearing, a row going away); where an event exists, await it instead.
 */
export async function eventually<T>(
  check: () => Promise<T> | T,
  what: string,
  { timeoutMs = 30_000, intervalMs = 50 } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value as NonNullable<T>
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${timeoutMs} ms)`)
    await delay(intervalMs)
  }
}
