import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { chromiumMissing, launchChromium } from './support/browser.js'
import {
  type SiloProcess,
  freeLoopbackPort,
  killChildren,
  siloEnv,
  spawnSilo,
} from './support/child.js'
import { freshDataDir, removeDataDir } from './support/server.js'
import { SseClient } from './support/sseClient.js'

/**
 * The web console in a real browser (README "Web console"): Debian's Chromium signed in to the
 * built server running as a real process, driven as a person would, with what another person
 * or the operator does at the same time.
 */

const SCREENSHOTS = join(process.cwd(), 'test-results', 'console')
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')

let browser: Browser
let silo: SiloProcess
let url: string
let dir: string
let port: number
let admin: string
const contexts: BrowserContext[] = []

async function startSilo(): Promise<void> {
  silo = spawnSilo(siloEnv(dir, { SILO_SERVER_PORT: String(port), SILO_EVENTS_RETRY: '500' }))
  url = (await silo.listening()).url
}

async function stopSilo(): Promise<void> {
  silo.signal('SIGTERM')
  await silo.exited
}

async function call(method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

async function newToken(role: string): Promise<{ id: number; token: string; name: string }> {
  const name = `${role}-${Math.random().toString(36).slice(2, 8)}`
  const res = await call('POST', '/api/admin/tokens', admin, { name, role })
  expect(res.status).toBe(201)
  return res.body
}

/**
 * What the page shows, asked again until it matches: the DOM announces no event a test could
 * await. Generous, for a loaded two-core machine; a pass is usually a few polls.
 */
const poll = <T>(read: () => Promise<T> | T) => expect.poll(read, { timeout: 20_000 })

/**
 * A browser of its own (own cookies), signed in with `token` through the sign-in form of the
 * server at `base` (this file's main one unless given).
 */
async function signedIn(token: string, base = url): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  contexts.push(context)
  const page = await context.newPage()
  await page.goto(base)
  await page.getByLabel('API token').fill(token)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await poll(() => page.getByTestId('connection').textContent()).toBe('Live')
  return page
}

function shot(page: Page, name: string): Promise<Buffer> {
  mkdirSync(SCREENSHOTS, { recursive: true })
  return page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true })
}

const row = (page: Page, partNumber: string) => page.locator(`tr[data-pn="${partNumber}"]`)

beforeAll(async () => {
  if (chromiumMissing) return
  browser = await launchChromium()
  dir = freshDataDir()
  port = await freeLoopbackPort()
  await startSilo()
  admin = (await silo.waitForLine(/^ {2}(silo_\S+)$/))[1] as string
})

afterEach(async () => {
  for (const context of contexts.splice(0)) await context.close()
})

afterAll(async () => {
  await browser?.close()
  await killChildren()
  if (dir) removeDataDir(dir)
})

describe.skipIf(chromiumMissing)('the web console', () => {
  it('shows one person what another changes, live: create, edit, upload, delete, and the activity feed', async () => {
    // Given two people signed in, one on the list and one who will work on an item
    const alice = await signedIn((await newToken('editor')).token)
    const bob = await signedIn((await newToken('editor')).token)

    // When Alice creates an item with the form
    await alice.getByRole('button', { name: 'New item' }).click()
    await alice.getByLabel('Part number').fill('LIVE-1')
    await alice.getByLabel('Description', { exact: true }).fill('Bracket')
    await alice.getByRole('button', { name: 'Create' }).click()
    // Then it appears in Bob's list without a reload
    await poll(() => row(bob, 'LIVE-1').textContent()).toContain('Bracket')

    // When Bob opens it and changes its description
    await bob.getByRole('link', { name: 'LIVE-1' }).click()
    await bob.getByLabel('Description').fill('Bracket, steel')
    await bob.getByRole('button', { name: 'Save' }).click()
    // Then Alice's row changes, marked as just changed
    await poll(() => row(alice, 'LIVE-1').textContent()).toContain('Bracket, steel')
    expect(await row(alice, 'LIVE-1').getAttribute('class')).toContain('changed')

    // When Alice opens the item too and Bob uploads a file as a new revision
    await alice.getByRole('link', { name: 'LIVE-1' }).click()
    await alice.getByRole('heading', { name: 'LIVE-1' }).waitFor()
    await bob.getByLabel('Comment').fill('first drawing')
    await bob.getByLabel('File').setInputFiles({
      name: 'bracket.step',
      mimeType: 'application/step',
      buffer: Buffer.alloc(200_000, 7),
    })
    await bob.getByRole('button', { name: 'Add revision' }).click()
    // Then the revision shows on Alice's page with its file
    await poll(() => alice.getByRole('link', { name: 'bracket.step' }).count()).toBe(1)
    await shot(alice, 'item')

    // When Bob deletes it from his page
    bob.once('dialog', (dialog) => void dialog.accept())
    await bob.getByRole('button', { name: 'Delete item' }).click()
    // Then Alice's page says so, and her activity feed lists every change with its part number
    await poll(() => alice.getByRole('alert').textContent()).toContain('was deleted')
    await alice.getByRole('link', { name: 'Activity' }).click()
    const feed = alice.getByTestId('activity')
    await poll(() => feed.locator('li .event-type').allTextContents()).toEqual([
      'item.deleted',
      'revision.created',
      'item.updated',
      'item.created',
    ])
    expect(await feed.getByRole('link', { name: 'LIVE-1' }).count()).toBe(4)
    await shot(alice, 'activity')
  })

  it('searches, filters by type and pages through more items than one page holds', async () => {
    // Given 150 items from one sheet, every third a drawing
    const rows = Array.from({ length: 150 }, (_, i) => {
      const n = String(i).padStart(3, '0')
      return `PAGE-${n},sheet row ${n},${i % 3 === 0 ? 'drawing' : 'part'}`
    })
    const sheet = `part_number,description,item_type\n${rows.join('\n')}\n`
    const imported = await fetch(`${url}/api/import/csv`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'text/csv' },
      body: sheet,
    })
    expect(imported.status).toBe(200)
    const page = await signedIn((await newToken('viewer')).token)
    const listed = page.locator('tr[data-pn^="PAGE-"]')

    await page.getByLabel('Search').fill('PAGE-')
    await poll(() => listed.count()).toBe(100)
    await page.getByRole('button', { name: 'Load more' }).click()
    await poll(() => listed.count()).toBe(150)
    expect(await page.getByRole('button', { name: 'Load more' }).count()).toBe(0)

    await page.getByLabel('Type').selectOption('drawing')
    await poll(() => listed.count()).toBe(50)
    await page.getByLabel('Search').fill('row 14')
    await poll(() =>
      listed.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-pn'))),
    ).toEqual(['PAGE-141', 'PAGE-144', 'PAGE-147'])
  })

  it("shows the API's refusals next to the field they name and a BOM cycle with its path, and edits and removes BOM lines", async () => {
    const editor = await newToken('editor')
    const page = await signedIn(editor.token)
    // A part number the API refuses: the message sits under the part-number field
    await page.getByRole('button', { name: 'New item' }).click()
    await page.getByLabel('Part number').fill('no spaces allowed')
    await page.getByRole('button', { name: 'Create' }).click()
    const fieldError = page.locator('#new-part_number-error')
    await poll(() => fieldError.textContent()).toContain('part_number')

    // Two items, B in A's BOM; adding A to B's BOM is refused with the cycle
    for (const pn of ['CYC-A', 'CYC-B']) {
      expect(
        (await call('POST', '/api/items', editor.token, { part_number: pn, item_type: 'assembly' }))
          .status,
      ).toBe(201)
    }
    expect(
      (await call('POST', '/api/items/CYC-A/bom', editor.token, { child: 'CYC-B', quantity: 1 }))
        .status,
    ).toBe(201)
    await page.goto(`${url}/#/items/CYC-B`)
    await page.getByRole('heading', { name: 'CYC-B' }).waitFor()
    await page.getByLabel('Child part number').fill('CYC-A')
    await page.getByRole('button', { name: 'Add', exact: true }).click()
    await poll(() => page.getByTestId('bom-error').textContent()).toMatch(
      /cycle: CYC-B -> CYC-A -> CYC-B/,
    )
    await shot(page, 'bom-cycle')

    // On A's page, the line to B can be changed and removed
    await page.goto(`${url}/#/items/CYC-A`)
    const quantity = page.getByLabel('Quantity of CYC-B')
    await quantity.waitFor()
    await quantity.fill('4')
    await quantity.press('Enter')
    const bom = async () => (await call('GET', '/api/items/CYC-A/bom', editor.token)).body.children
    await poll(async () => (await bom())[0]?.quantity).toBe(4)
    await page.getByRole('button', { name: 'Remove CYC-B' }).click()
    await poll(async () => (await bom()).length).toBe(0)
    await poll(() => page.getByLabel('Quantity of CYC-B').count()).toBe(0)
  })

  it('shows a stale edit as a conflict naming who changed the item, and reloads it on request', async () => {
    // Given Alice editing an item's description
    const bob = await newToken('editor')
    const alice = await signedIn((await newToken('editor')).token)
    expect(
      (
        await call('POST', '/api/items', bob.token, {
          part_number: 'STALE-1',
          item_type: 'part',
          description: 'v1',
        })
      ).status,
    ).toBe(201)
    await alice.goto(`${url}/#/items/STALE-1`)
    await alice.getByRole('heading', { name: 'STALE-1' }).waitFor()
    await alice.getByLabel('Description').fill('Alice was here')

    // When Bob changes it meanwhile, and Alice saves
    expect(
      (await call('PATCH', '/api/items/STALE-1', bob.token, { description: 'Bob was first' }))
        .status,
    ).toBe(200)
    await poll(() => alice.locator('.meta').textContent()).toContain('version 2')
    await alice.getByRole('button', { name: 'Save' }).click()

    // Then her change is refused, the page says Bob changed it, and nothing of hers was stored
    const conflict = alice.getByTestId('conflict')
    await poll(() => conflict.textContent()).toContain(bob.name)
    await shot(alice, 'conflict')
    expect((await call('GET', '/api/items/STALE-1', bob.token)).body.description).toBe(
      'Bob was first',
    )
    await alice.getByRole('button', { name: 'Reload the item' }).click()
    expect(await alice.getByLabel('Description').inputValue()).toBe('Bob was first')
    // And the history lists both changes with who made them
    await poll(() => alice.locator('.history li').count()).toBe(2)
    expect(await alice.locator('.history li').first().textContent()).toContain(bob.name)
  })

  it("shows an upload's progress while it goes, then the new revision", async () => {
    const editor = await newToken('editor')
    expect(
      (
        await call('POST', '/api/items', editor.token, {
          part_number: 'UPLOAD-1',
          item_type: 'part',
        })
      ).status,
    ).toBe(201)
    const page = await signedIn(editor.token)
    await page.goto(`${url}/#/items/UPLOAD-1`)
    await page.getByRole('heading', { name: 'UPLOAD-1' }).waitFor()
    // A slow link: 600 KB at 200 KB/s takes about three seconds
    const cdp = await page.context().newCDPSession(page)
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: 200 * 1024,
    })
    await page.locator('#rev-file').setInputFiles({
      name: 'big.bin',
      mimeType: 'application/octet-stream',
      buffer: Buffer.alloc(600 * 1024, 1),
    })
    await page.getByRole('button', { name: 'Add revision' }).click()
    const progress = page.getByLabel('Upload progress')
    await poll(async () => Number(await progress.getAttribute('value'))).toBeGreaterThan(0)
    expect(Number(await progress.getAttribute('value'))).toBeLessThan(1)
    await shot(page, 'upload-progress')
    await poll(() => page.getByRole('link', { name: 'big.bin' }).count()).toBe(1)
    expect(await progress.count()).toBe(0)
  })

  it('shows read-only after SIGUSR1 with every write control disabled, and writable again after the next', async () => {
    const page = await signedIn((await newToken('editor')).token)
    const create = page.getByRole('button', { name: 'New item' })
    expect(await create.isEnabled()).toBe(true)

    silo.signal('SIGUSR1')
    await poll(() => page.getByTestId('mode').textContent()).toBe('read-only')
    expect(await page.getByTestId('mode-banner').textContent()).toContain('read-only')
    expect(await create.isDisabled()).toBe(true)
    await shot(page, 'read-only')

    silo.signal('SIGUSR1')
    await poll(() => page.getByTestId('mode').textContent()).toBe('normal')
    expect(await create.isEnabled()).toBe(true)
    expect(await page.getByTestId('mode-banner').count()).toBe(0)
  })

  it('says it is reconnecting while the server restarts, then catches up with no event missing or twice', async () => {
    // Given a person watching the activity feed, and changes made before the restart
    const editor = await newToken('editor')
    const page = await signedIn(editor.token)
    await page.getByRole('link', { name: 'Activity' }).click()
    await call('POST', '/api/items', editor.token, { part_number: 'RESTART-1', item_type: 'part' })
    await poll(() => page.getByTestId('activity').locator('li').count()).toBeGreaterThan(0)

    // When the server stops, the page says it is reconnecting
    await stopSilo()
    await poll(() => page.getByTestId('connection').textContent()).toBe('Reconnecting…')
    // The server said it was shutting down: the page says it will be back, not that it broke
    expect(await page.getByTestId('mode-banner').textContent()).toContain('reconnects by itself')
    await shot(page, 'reconnecting')

    // And when it is back and more changes are made, the page catches up
    await startSilo()
    for (const pn of ['RESTART-2', 'RESTART-3']) {
      expect(
        (await call('POST', '/api/items', editor.token, { part_number: pn, item_type: 'part' }))
          .status,
      ).toBe(201)
    }
    await poll(() => page.getByTestId('connection').textContent()).toBe('Live')
    const shown = () =>
      page
        .getByTestId('activity')
        .locator('li')
        .evaluateAll((items) => items.map((li) => Number(li.getAttribute('data-id'))))
    const feed = page.getByTestId('activity')
    await poll(() => feed.getByRole('link', { name: 'RESTART-3' }).count()).toBe(1)

    // Then what it shows since it opened is exactly the log's events since then, once each
    const ids = await shown()
    expect(new Set(ids).size).toBe(ids.length)
    expect([...ids].reverse()).toEqual(await logIds(Math.min(...ids), 'RESTART-3'))
  })

  it('returns to sign-in and says why when the signed-in token is revoked', async () => {
    const viewer = await newToken('viewer')
    const page = await signedIn(viewer.token)
    expect((await call('DELETE', `/api/admin/tokens/${viewer.id}`, admin)).status).toBe(204)
    await poll(() => page.getByTestId('signed-out-reason').textContent()).toContain('revoked')
    expect(await page.getByLabel('API token').isVisible()).toBe(true)
    await shot(page, 'revoked')
  })

  it('signs out: back to the sign-in form, and the session no longer works', async () => {
    const page = await signedIn((await newToken('viewer')).token)
    const cookies = await page.context().cookies()
    expect(cookies.find((c) => c.name === 'silo_session')).toMatchObject({
      httpOnly: true,
      sameSite: 'Strict',
    })
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByLabel('API token').waitFor()
    const session = cookies.find((c) => c.name === 'silo_session')?.value as string
    const res = await fetch(`${url}/api/session`, {
      headers: { cookie: `silo_session=${session}` },
    })
    expect(res.status).toBe(401)
  })

  it('lists every bad cell of a sheet in its dry run, and applies a good one', async () => {
    const page = await signedIn((await newToken('editor')).token)
    await page.getByRole('link', { name: 'Import' }).click()
    const bad = [
      'part_number,description,item_type',
      'OK-1,fine,part',
      ',no number,part',
      'BAD-2,bad type,gizmo',
    ]
    await page.getByLabel('CSV or ODS file').setInputFiles({
      name: 'items.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(`${bad.join('\n')}\n`),
    })
    await page.getByRole('button', { name: 'Check (dry run)' }).click()
    const cells = page.getByTestId('bad-cells').locator('tbody tr')
    await poll(() => cells.count()).toBe(2)
    const rows = await cells.evaluateAll((trs) =>
      trs.map((tr) => tr.querySelector('td')?.textContent),
    )
    expect(rows).toEqual(['3', '4'])
    await shot(page, 'import-refused')

    await page.getByLabel('CSV or ODS file').setInputFiles({
      name: 'items.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from('part_number,description,item_type\nSHEET-1,from a sheet,part\n'),
    })
    await page.getByRole('button', { name: 'Check (dry run)' }).click()
    await poll(() => page.getByTestId('import-result').textContent()).toContain('Would create 1')
    await page.getByRole('button', { name: 'Apply' }).click()
    await poll(() => page.getByTestId('import-result').textContent()).toContain('Created 1')
  })

  it('lets an admin make a token (its secret shown once), switch the fleet read-only and back, and see readiness', async () => {
    const page = await signedIn(admin)
    await page.getByRole('link', { name: 'Admin' }).click()
    await poll(() => page.getByTestId('ready').textContent()).toContain('ok')

    await page.getByLabel('Name').fill('made-in-console')
    await page.getByLabel('Role').selectOption('viewer')
    await page.getByRole('button', { name: 'Create token' }).click()
    const shown = page.getByTestId('new-secret').locator('code')
    await poll(() => shown.textContent()).toMatch(/^silo_/)
    const secret = (await shown.textContent()) as string
    // The secret works, and is not shown again
    expect((await call('GET', '/api/items', secret)).status).toBe(200)
    await page.getByRole('button', { name: 'I have copied it' }).click()
    expect(await page.getByTestId('new-secret').count()).toBe(0)
    expect(await page.getByRole('button', { name: 'Revoke made-in-console' }).count()).toBe(1)

    await page.getByRole('button', { name: 'Make the fleet read-only' }).click()
    await poll(() => page.getByTestId('mode').textContent()).toBe('read-only')
    await page.getByRole('button', { name: 'Make the fleet writable' }).click()
    await poll(() => page.getByTestId('mode').textContent()).toBe('normal')
    await shot(page, 'admin')
  })

  it('can be used with the keyboard alone and fits a 390-pixel phone', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } })
    contexts.push(context)
    const page = await context.newPage()
    await page.goto(url)
    await page.getByLabel('API token').waitFor()
    await page.keyboard.press('Tab')
    await page.keyboard.type((await newToken('viewer')).token)
    await page.keyboard.press('Enter')
    await poll(() => page.getByTestId('connection').textContent()).toBe('Live')
    // Page code as text: this file is compiled for Node, without the DOM's types.
    const overflow = await page.evaluate<number>(
      'document.documentElement.scrollWidth - window.innerWidth',
    )
    expect(overflow).toBeLessThanOrEqual(0)
    await shot(page, 'phone')
  })

  it('has no serious accessibility violations on any page (axe-core)', async () => {
    // axe is injected as a script, which the console's policy rightly forbids: this context
    // alone bypasses it.
    const context = await browser.newContext({
      bypassCSP: true,
      viewport: { width: 1280, height: 800 },
    })
    contexts.push(context)
    const page = await context.newPage()
    await page.goto(url)
    const check = async (name: string) => {
      await page.addScriptTag({ content: AXE })
      const violations = await page.evaluate<string[]>(`axe.run().then((result) =>
        result.violations
          .filter((v) => v.impact === 'serious' || v.impact === 'critical')
          .map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).join(', ')))`)
      expect(violations, name).toEqual([])
    }
    await check('sign-in')
    await page.getByLabel('API token').fill(admin)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await poll(() => page.getByTestId('connection').textContent()).toBe('Live')
    await call('POST', '/api/items', admin, { part_number: 'AXE-1', item_type: 'part' })
    for (const [link, name] of [
      ['Items', 'items'],
      ['Import', 'import'],
      ['Activity', 'activity'],
      ['Admin', 'admin'],
    ] as const) {
      await page.getByRole('link', { name: link, exact: true }).click()
      await page.getByRole('heading', { level: 2 }).waitFor()
      await check(name)
    }
    await page.goto(`${url}/#/items/AXE-1`)
    await page.getByRole('heading', { name: 'AXE-1' }).waitFor()
    await check('item')
    await shot(page, 'item-page')
  })
})

/**
 * The stored event ids from `first` up to the creation of `last`, replayed from the server's
 * log as any client reads it.
 */
async function logIds(first: number, last: string): Promise<number[]> {
  const client = new SseClient(url, { token: admin, lastEventId: first - 1 })
  try {
    await client.waitForEvent('item.created', (e) => e.data.part_number === last)
    return client.stored.map((e) => e.id as number)
  } finally {
    client.close()
  }
}

describe.skipIf(chromiumMissing)('the web console when the stream cannot simply go on', () => {
  let other: SiloProcess
  let otherDir: string
  let otherUrl: string
  let otherAdmin: string
  let otherPort: number
  // Little retention, pruned often, storage checked often, quick reconnects: the cases below
  // happen fast.
  const OTHER_ENV = {
    SILO_EVENTS_RETENTION_COUNT: '5',
    SILO_EVENTS_PRUNE_INTERVAL: '200ms',
    SILO_STORAGE_HEALTH_INTERVAL: '200ms',
    SILO_STORAGE_FAILURE_THRESHOLD: '1',
    SILO_EVENTS_RETRY: '500',
  }

  beforeAll(async () => {
    if (chromiumMissing) return
    otherDir = freshDataDir()
    otherPort = await freeLoopbackPort()
    await startOther()
    otherAdmin = (await other.waitForLine(/^ {2}(silo_\S+)$/))[1] as string
  })

  async function startOther(): Promise<void> {
    other = spawnSilo(siloEnv(otherDir, { ...OTHER_ENV, SILO_SERVER_PORT: String(otherPort) }))
    otherUrl = (await other.listening()).url
  }

  afterAll(async () => {
    // Its servers still run (their storage check writes into the folder every 200 ms), and
    // removing the folder under them fails with ENOTEMPTY: they are stopped first.
    await killChildren()
    if (otherDir) removeDataDir(otherDir)
  })

  const signedInTo = () => signedIn(otherAdmin, otherUrl)

  const create = (base: string, partNumber: string) =>
    fetch(`${base}/api/items`, {
      method: 'POST',
      headers: { authorization: `Bearer ${otherAdmin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ part_number: partNumber, item_type: 'part' }),
    }).then((res) => expect(res.status).toBe(201))

  it('says offline while the browser is, and live again when it is back', async () => {
    const page = await signedInTo()
    await page.context().setOffline(true)
    await poll(() => page.getByTestId('connection').textContent()).toBe('Offline')
    await shot(page, 'offline')
    await page.context().setOffline(false)
    await poll(() => page.getByTestId('connection').textContent()).toBe('Live')
  })

  it('after missing more than the server keeps, refetches everything and says so', async () => {
    // Given a person on the item list
    const page = await signedInTo()
    await create(otherUrl, 'RESET-0')
    await poll(() => row(page, 'RESET-0').count()).toBe(1)

    // When the server is away, and another instance on its data makes more changes than the
    // log retains
    other.signal('SIGTERM')
    await other.exited
    await poll(() => page.getByTestId('connection').textContent()).toBe('Reconnecting…')
    const side = spawnSilo(siloEnv(otherDir, { ...OTHER_ENV, SILO_SERVER_PORT: '0' }))
    const sideUrl = (await side.listening()).url
    for (let i = 1; i <= 12; i++) await create(sideUrl, `RESET-${i}`)
    // Retention has dropped what the page saw last (RESET-0's creation)
    await poll(async () => {
      const res = await fetch(`${sideUrl}/api/items/RESET-0/history`, {
        headers: { authorization: `Bearer ${otherAdmin}` },
      })
      return ((await res.json()) as { events: unknown[] }).events.length
    }).toBe(0)
    side.signal('SIGTERM')
    await side.exited

    // Then when the server is back, the page says the stream reset and shows every item again
    await startOther()
    await poll(() => page.locator('.notice').textContent()).toContain(
      'everything shown was reloaded',
    )
    await poll(() => page.locator('tr[data-pn^="RESET-"]').count()).toBe(13)
    await shot(page, 'reset')
  })

  it('disables file actions while storage is unavailable, and enables them when it is back', async () => {
    const page = await signedInTo()
    await create(otherUrl, 'FILES-1')
    await page.goto(`${otherUrl}/#/items/FILES-1`)
    await page.getByRole('heading', { name: 'FILES-1' }).waitFor()
    const file = page.locator('#rev-file')
    expect(await file.isEnabled()).toBe(true)

    // Storage breaks: its folder becomes a file
    const files = join(otherDir, 'files')
    renameSync(files, `${files}.away`)
    writeFileSync(files, '')
    try {
      await poll(() => page.getByTestId('mode').textContent()).toBe('degraded')
      expect(await file.isDisabled()).toBe(true)
      // Metadata writes go on
      expect(await page.getByLabel('Description').isEnabled()).toBe(true)
      await shot(page, 'degraded')
    } finally {
      rmSync(files)
      renameSync(`${files}.away`, files)
    }
    await poll(() => page.getByTestId('mode').textContent()).toBe('normal')
    expect(await file.isEnabled()).toBe(true)
  })
})
