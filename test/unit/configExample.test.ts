import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { ConfigSchema, loadConfig } from '../../src/config.js'

const EXAMPLE = fileURLToPath(new URL('../../config.example.yaml', import.meta.url))
const MINIO_BLOCK_START = '  # minio:'

interface SchemaNode {
  type?: string
  properties?: Record<string, SchemaNode>
}

/** Every leaf key of the schema as a path, e.g. ['server', 'port']. */
function leafPaths(schema: SchemaNode, path: string[] = []): string[][] {
  if (schema.type === 'object' && schema.properties) {
    return Object.entries(schema.properties).flatMap(([key, child]) =>
      leafPaths(child, [...path, key]),
    )
  }
  return [path]
}

function hasPath(value: unknown, path: string[]): boolean {
  let node = value
  for (const key of path) {
    if (!node || typeof node !== 'object' || !(key in node)) return false
    node = (node as Record<string, unknown>)[key]
  }
  return true
}

/** The example with its commented-out `storage.minio` block switched on. */
function withMinioBlockUncommented(text: string): string {
  const lines = text.split('\n')
  const start = lines.indexOf(MINIO_BLOCK_START)
  for (let i = start; i >= 0 && i < lines.length; i++) {
    const line = lines[i] as string
    if (i > start && !line.startsWith('  #   ')) break
    lines[i] = line.replace(/^ {2}# /, '  ')
  }
  return lines.join('\n')
}

describe('config.example.yaml', () => {
  const text = readFileSync(EXAMPLE, 'utf8')

  it('loads cleanly and holds exactly the defaults of src/config.ts', () => {
    expect(loadConfig({ file: EXAMPLE })).toStrictEqual(loadConfig({}))
  })

  it('names every key of the schema, storage.minio as a commented-out block', () => {
    const active = parseYaml(text) as unknown
    for (const path of leafPaths(ConfigSchema as SchemaNode)) {
      if (path[0] === 'storage' && path[1] === 'minio') {
        expect(text, path.join('.')).toMatch(new RegExp(`^ {2}# {3}${path[2]}:`, 'm'))
      } else {
        expect(hasPath(active, path), path.join('.')).toBe(true)
      }
    }
  })

  it('shows the storage.minio defaults in its commented-out block', () => {
    expect(text.split('\n')).toContain(MINIO_BLOCK_START)
    const dir = mkdtempSync(join(tmpdir(), 'silo-config-example-'))
    try {
      const file = join(dir, 'with-minio.yaml')
      writeFileSync(file, withMinioBlockUncommented(text))
      const { minio, ...storage } = loadConfig({ file }).storage
      const defaults = loadConfig({
        overrides: { storage: { minio: { endpoint: 'minio.internal' } } },
      })
      expect(minio).toStrictEqual(defaults.storage.minio)
      expect(storage).toStrictEqual(loadConfig({}).storage)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
