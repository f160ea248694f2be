import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { StorageMonitor } from '../../src/state/storageMonitor.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

function monitorWith(ping: (signal: AbortSignal) => Promise<void>) {
  const changes: boolean[] = []
  const monitor = new StorageMonitor({
    ping,
    intervalMs: 1000,
    timeoutMs: 200,
    failureThreshold: 3,
    onHealthChange: (healthy) => changes.push(healthy),
  })
  return { monitor, changes }
}

describe('StorageMonitor', () => {
  it('turns unhealthy only after the threshold of consecutive failures', async () => {
    let up = true
    const { monitor, changes } = monitorWith(async () => {
      if (!up) throw new Error('connection refused')
    })
    await monitor.start()
    up = false
    await vi.advanceTimersByTimeAsync(1000)
    await vi.advanceTimersByTimeAsync(1000)
    expect(changes).toEqual([])
    await vi.advanceTimersByTimeAsync(1000)
    expect(changes).toEqual([false])
    expect(monitor.isHealthy).toBe(false)
    monitor.stop()
  })

  it('turns healthy again on the first success', async () => {
    let up = false
    const { monitor, changes } = monitorWith(async () => {
      if (!up) throw new Error('down')
    })
    await monitor.start()
    await vi.advanceTimersByTimeAsync(2000)
    up = true
    await vi.advanceTimersByTimeAsync(1000)
    expect(changes).toEqual([false, true])
    monitor.stop()
  })

  it('counts a ping that never answers as failed after its timeout and aborts it', async () => {
    const signals: AbortSignal[] = []
    const { monitor, changes } = monitorWith(
      (signal) =>
        new Promise(() => {
          signals.push(signal)
        }),
    )
    const started = monitor.start()
    await vi.advanceTimersByTimeAsync(200)
    await started
    await vi.advanceTimersByTimeAsync(1200)
    await vi.advanceTimersByTimeAsync(1200)
    expect(changes).toEqual([false])
    expect(signals.length).toBe(3)
    expect(signals.every((s) => s.aborted)).toBe(true)
    monitor.stop()
  })

  it('never runs two pings at once', async () => {
    let running = 0
    let overlapped = false
    const { monitor } = monitorWith(async () => {
      running++
      if (running > 1) overlapped = true
      await new Promise((r) => setTimeout(r, 150))
      running--
    })
    await Promise.all([monitor.check(), monitor.check(), vi.advanceTimersByTimeAsync(150)])
    expect(overlapped).toBe(false)
  })

  it('reports every ping with its duration and outcome, timeouts as failures', async () => {
    let mode: 'ok' | 'fail' | 'hang' = 'ok'
    const { monitor } = monitorWith(async () => {
      if (mode === 'fail') throw new Error('refused')
      if (mode === 'hang') await new Promise(() => {})
      await new Promise((r) => setTimeout(r, 50))
    })
    const results: { ok: boolean; durationMs: number }[] = []
    monitor.onPing((result) => results.push(result))
    await Promise.all([monitor.check(), vi.advanceTimersByTimeAsync(50)])
    mode = 'fail'
    await monitor.check()
    mode = 'hang'
    await Promise.all([monitor.check(), vi.advanceTimersByTimeAsync(200)])
    expect(results).toEqual([
      { ok: true, durationMs: 50 },
      { ok: false, durationMs: 0 },
      { ok: false, durationMs: 200 },
    ])
  })
})
