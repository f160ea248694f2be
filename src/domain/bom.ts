import type { Queryable } from '../db/database.js'
import { itemUpdated, type NewEvent } from '../events/catalogue.js'
import { type ActingContext, mutate } from './context.js'
import type { Actor, Bom, BomChild, BomLine, BomLinePatch, NewBomLine } from './schemas.js'

export type { Bom, BomChild, BomLine, BomLinePatch, NewBomLine } from './schemas.js'
import { AppError, conflict, notFound } from './errors.js'
import { type IfMatch, requireVersion } from './items.js'

/**
 * Serialises every BOM mutation (pg_advisory_xact_lock, released at commit). The cycle check
 * reads the graph and the insert writes it; two transactions each adding one half of a cycle
 * would both pass their check (write skew) unless they run one after the other.
 *
 * Advisory lock keys in use: 5110 migrations (db/migrations.ts), 5111 event order and 5112 event
 * pruning (events/eventLog.ts), 5113 BOM mutations (here).
 */
export const BOM_LOCK = 5113

interface BomChildRow extends Omit<BomChild, 'quantity'> {
  // numeric comes back as text: it may hold more digits than a double.
  quantity: string | number
}

function toBomChild(row: BomChildRow): BomChild {
  return {
    part_number: row.part_number,
    description: row.description,
    item_type: row.item_type,
    quantity: Number(row.quantity),
    reference_designators: row.reference_designators,
  }
}

function toBomLine(child: BomChild): BomLine {
  return {
    part_number: child.part_number,
    quantity: child.quantity,
    reference_designators: child.reference_designators,
  }
}

const CHILD_COLUMNS = `i.part_number, i.description, i.item_type, b.quantity,
  b.reference_designators`

/** The children of `parent`, ordered by part number (byte order: the column is COLLATE "C"). */
async function readChildren(db: Queryable, parent: string, child?: string): Promise<BomChild[]> {
  const { rows } = await db.query<BomChildRow>(
    `SELECT ${CHILD_COLUMNS} FROM bom_lines b JOIN items i ON i.part_number = b.child
     WHERE b.parent = $1 AND ($2::text IS NULL OR b.child = $2)
     ORDER BY b.child`,
    [parent, child ?? null],
  )
  return rows.map(toBomChild)
}

async function requireItem(db: Queryable, partNumber: string, lock: string): Promise<void> {
  const { rows } = await db.query(`SELECT 1 FROM items WHERE part_number = $1 ${lock}`, [
    partNumber,
  ])
  if (rows.length === 0) throw notFound(`item ${partNumber}`)
}

/** Reads a parent's BOM; 404 when the parent does not exist. */
export async function getBom(db: Queryable, parent: string): Promise<Bom> {
  await requireItem(db, parent, '')
  return { part_number: parent, children: await readChildren(db, parent) }
}

/**
 * The shortest path of BOM lines from `from` down to `to`, both included, or null when `to` is
 * not below `from`. Walks breadth-first, keeping one path per node and level, so the work stays
 * bounded by levels × lines however many ways shared subassemblies can be reached. The
 * `ANY(path)` guard keeps the walk finite even over a graph that already holds a cycle.
 */
async function pathDown(db: Queryable, from: string, to: string): Promise<string[] | null> {
  const { rows } = await db.query<{ path: string[] }>(
    `WITH RECURSIVE walk(node, path) AS (
       SELECT $1::text COLLATE "C", ARRAY[$1::text COLLATE "C"]
       UNION ALL
       SELECT DISTINCT ON (b.child) b.child, w.path || b.child
       FROM walk w JOIN bom_lines b ON b.parent = w.node
       WHERE w.node <> $2 AND NOT b.child = ANY(w.path)
     )
     SELECT path FROM walk WHERE node = $2 ORDER BY cardinality(path), path LIMIT 1`,
    [from, to],
  )
  return rows[0]?.path ?? null
}

function cycleError(parent: string, child: string, cycle: string[]): AppError {
  return new AppError(
    409,
    'bom_cycle',
    `adding ${child} to the BOM of ${parent} would make a cycle: ${cycle.join(' -> ')}`,
    {},
    { cycle },
  )
}

/**
 * Takes the BOM lock, then the parent's row (so the parent cannot be deleted under the change);
 * 404 when the parent does not exist, 412 when its version is not one `ifMatch` accepts.
 */
async function lockBom(tx: Queryable, parent: string, ifMatch: IfMatch): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock($1)', [BOM_LOCK])
  const { rows } = await tx.query<{ version: number }>(
    'SELECT version FROM items WHERE part_number = $1 FOR NO KEY UPDATE',
    [parent],
  )
  const row = rows[0]
  if (!row) throw notFound(`item ${parent}`)
  await requireVersion(tx, parent, Number(row.version), ifMatch)
}

/**
 * Records a change of the parent's BOM, which is a change of the parent: bumps its version and
 * updated_at and emits item.updated with its whole BOM after the change.
 */
async function bomChanged(
  tx: Queryable,
  parent: string,
  actor: Actor,
  emit: (event: NewEvent) => void,
): Promise<void> {
  const { rows } = await tx.query<{ version: number }>(
    `UPDATE items SET version = version + 1, updated_at = now(), updated_by = $2
     WHERE part_number = $1 RETURNING version`,
    [parent, JSON.stringify(actor)],
  )
  const bom = (await readChildren(tx, parent)).map(toBomLine)
  emit(itemUpdated(parent, Number(rows[0]?.version), actor, { bom }))
}

const lineNotFound = (parent: string, child: string) =>
  notFound(`BOM line ${child} of item ${parent}`)

/**
 * Adds `child` to the BOM of `parent`. Refuses a missing parent or child (404), a child already
 * on the BOM (409 conflict) and a line that would close a cycle (409 bom_cycle with the path).
 */
export async function addBomLine(
  ctx: ActingContext,
  parent: string,
  line: NewBomLine,
  ifMatch?: IfMatch,
): Promise<BomChild> {
  return mutate(ctx, async (tx, emit) => {
    await lockBom(tx, parent, ifMatch)
    const { child } = line
    if (child === parent) throw cycleError(parent, child, [parent, parent])
    // Key-share: the child cannot be deleted between this check and the commit.
    await requireItem(tx, child, 'FOR KEY SHARE')
    const existing = await tx.query('SELECT 1 FROM bom_lines WHERE parent = $1 AND child = $2', [
      parent,
      child,
    ])
    if (existing.rows.length > 0) throw conflict(`${child} is already on the BOM of ${parent}`)
    const path = await pathDown(tx, child, parent)
    if (path) throw cycleError(parent, child, [parent, ...path])
    await tx.query(
      `INSERT INTO bom_lines (parent, child, quantity, reference_designators)
       VALUES ($1, $2, $3, $4)`,
      [parent, child, line.quantity, line.reference_designators ?? []],
    )
    await bomChanged(tx, parent, ctx.actor, emit)
    return (await readChildren(tx, parent, child))[0] as BomChild
  })
}

function sameDesignators(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i])
}

/**
 * Changes the quantity and/or reference designators of a line (404 when the child is not on the
 * BOM). A change to the values the line already has writes nothing and emits nothing.
 */
export async function updateBomLine(
  ctx: ActingContext,
  parent: string,
  child: string,
  patch: BomLinePatch,
  ifMatch?: IfMatch,
): Promise<BomChild> {
  return mutate(ctx, async (tx, emit) => {
    await lockBom(tx, parent, ifMatch)
    const current = (await readChildren(tx, parent, child))[0]
    if (!current) throw lineNotFound(parent, child)
    const quantity = patch.quantity ?? current.quantity
    const designators = patch.reference_designators ?? current.reference_designators
    if (
      quantity === current.quantity &&
      sameDesignators(designators, current.reference_designators)
    ) {
      return current
    }
    await tx.query(
      `UPDATE bom_lines SET quantity = $3, reference_designators = $4
       WHERE parent = $1 AND child = $2`,
      [parent, child, quantity, designators],
    )
    await bomChanged(tx, parent, ctx.actor, emit)
    return { ...current, quantity, reference_designators: designators }
  })
}

/** Removes `child` from the BOM of `parent` (404 when it is not on it). */
export async function removeBomLine(
  ctx: ActingContext,
  parent: string,
  child: string,
  ifMatch?: IfMatch,
): Promise<void> {
  await mutate(ctx, async (tx, emit) => {
    await lockBom(tx, parent, ifMatch)
    const { rows } = await tx.query(
      'DELETE FROM bom_lines WHERE parent = $1 AND child = $2 RETURNING 1',
      [parent, child],
    )
    if (rows.length === 0) throw lineNotFound(parent, child)
    await bomChanged(tx, parent, ctx.actor, emit)
  })
}
