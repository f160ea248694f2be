import { describe, expect, it } from 'vitest'
import { applyEvent, type ListState } from '../src/itemList.ts'

const item = (pn: string, description = '', item_type = 'part') => ({
  part_number: pn,
  description,
  item_type,
})
const all = { q: '', item_type: '' }

describe('the live item list', () => {
  it('puts a created item in its part-number place', () => {
    const state: ListState = { items: [item('A'), item('C')], nextCursor: null }
    const { state: next, change } = applyEvent(state, all, {
      type: 'item.created',
      data: item('B'),
    })
    expect(next.items.map((i) => i.part_number)).toEqual(['A', 'B', 'C'])
    expect(change).toEqual({ kind: 'changed', partNumber: 'B' })
  })

  it('leaves a created item beyond the loaded pages to the next page', () => {
    const state: ListState = { items: [item('A'), item('C')], nextCursor: 'c' }
    expect(applyEvent(state, all, { type: 'item.created', data: item('D') }).state).toBe(state)
    const inside = applyEvent(state, all, { type: 'item.created', data: item('B') }).state
    expect(inside.items.map((i) => i.part_number)).toEqual(['A', 'B', 'C'])
  })

  it('ignores created items the filter hides', () => {
    const state: ListState = { items: [], nextCursor: null }
    const query = { q: 'bolt', item_type: 'part' }
    expect(
      applyEvent(state, query, { type: 'item.created', data: item('X', 'nut') }).state.items,
    ).toEqual([])
    expect(
      applyEvent(state, query, { type: 'item.created', data: item('X', 'M3 Bolt', 'drawing') })
        .state.items,
    ).toEqual([])
    expect(
      applyEvent(state, query, { type: 'item.created', data: item('X', 'M3 Bolt') }).state.items,
    ).toHaveLength(1)
  })

  it('merges the changed fields of an update and drops an item that stops matching', () => {
    const state: ListState = { items: [item('A', 'bolt'), item('B', 'bolt')], nextCursor: null }
    const query = { q: 'bolt', item_type: '' }
    const updated = applyEvent(state, query, {
      type: 'item.updated',
      data: { part_number: 'A', item_type: 'assembly', version: 2 },
    })
    expect(updated.state.items[0]).toEqual({ ...item('A', 'bolt', 'assembly'), version: 2 })
    const gone = applyEvent(updated.state, query, {
      type: 'item.updated',
      data: { part_number: 'B', description: 'nut' },
    })
    expect(gone.state.items.map((i) => i.part_number)).toEqual(['A'])
    expect(gone.change).toEqual({ kind: 'removed', partNumber: 'B' })
  })

  it('asks for an item an update made match, and removes deleted ones', () => {
    const state: ListState = { items: [item('A')], nextCursor: null }
    expect(
      applyEvent(state, all, { type: 'item.updated', data: { part_number: 'Z', description: 'x' } })
        .change,
    ).toEqual({
      kind: 'fetch',
      partNumber: 'Z',
    })
    expect(
      applyEvent(state, all, { type: 'item.updated', data: { part_number: 'Z', bom: [] } }).change,
    ).toEqual({ kind: 'none' })
    expect(
      applyEvent(state, all, { type: 'item.deleted', data: { part_number: 'A' } }).state.items,
    ).toEqual([])
  })
})
