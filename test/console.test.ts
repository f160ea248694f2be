import { gzipSync } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { type TestServer, startServer } from './support/server.js'

/** The web console as silo serves it (README "Web console"): built, cached right, locked down. */
let server: TestServer
afterEach(() => server?.close())

async function assetsOf(html: string): Promise<string[]> {
  return [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1] as string)
}

describe('the web console', () => {
  it('serves its page at / without a token, never cached, under a strict policy', async () => {
    server = await startServer()
    const res = await fetch(`${server.url}/`)
    const html = await res.text()
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/html/)
    expect(res.headers.get('cache-control')).toBe('no-cache')
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    const csp = res.headers.get('content-security-policy') ?? ''
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).not.toContain('unsafe-inline')
    // Nothing is loaded from elsewhere and no script is inline.
    expect(html).not.toMatch(/(?:src|href)="(?:https?:)?\/\//)
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/)
  })

  it('serves the hashed assets the page names for a year, and nothing outside them', async () => {
    server = await startServer()
    const html = await (await fetch(`${server.url}/`)).text()
    const assets = await assetsOf(html)
    expect(assets.length).toBeGreaterThanOrEqual(2)
    for (const asset of assets) {
      const res = await fetch(`${server.url}${asset}`)
      expect(res.status, asset).toBe(200)
      expect(asset).toMatch(/-[A-Za-z0-9_-]{8,}\.(js|css)$/)
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
      expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    }
    // The page's whole initial JavaScript, as the browser downloads it, stays small.
    let scriptBytes = 0
    for (const asset of assets.filter((a) => a.endsWith('.js'))) {
      scriptBytes += gzipSync(
        Buffer.from(await (await fetch(`${server.url}${asset}`)).arrayBuffer()),
      ).length
    }
    expect(scriptBytes).toBeGreaterThan(0)
    expect(scriptBytes).toBeLessThanOrEqual(150 * 1024)
    const missing = await fetch(`${server.url}/assets/nothing-here.js`)
    expect(missing.status).toBe(404)
    expect(await missing.json()).toMatchObject({ error: 'not_found' })
    for (const path of ['/assets/..%2f..%2fpackage.json', '/assets/%2e%2e/%2e%2e/package.json']) {
      const res = await fetch(`${server.url}${path}`)
      expect(res.status, path).toBeGreaterThanOrEqual(400)
      expect(res.status, path).toBeLessThan(500)
      expect(await res.text()).not.toContain('"name": "silo"')
    }
  })
})
