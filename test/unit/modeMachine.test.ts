import { describe, expect, it } from 'vitest'
import { type ModeChange, ModeMachine } from '../../src/state/modeMachine.js'

function recording(machine: ModeMachine): ModeChange[] {
  const changes: ModeChange[] = []
  machine.onChange((c) => changes.push(c))
  return changes
}

describe('ModeMachine', () => {
  it('starts normal, or read-only when configured so', () => {
    expect(new ModeMachine({ readOnly: false }).mode).toBe('normal')
    expect(new ModeMachine({ readOnly: true }).mode).toBe('read-only')
  })

  it('toggles read-only and reports each change once with previous mode and reason', () => {
    const machine = new ModeMachine({ readOnly: false })
    const changes = recording(machine)
    machine.toggleReadOnly('SIGUSR1')
    machine.toggleReadOnly('SIGUSR1')
    expect(changes).toEqual([
      { mode: 'read-only', previous: 'normal', reason: 'SIGUSR1' },
      { mode: 'normal', previous: 'read-only', reason: 'SIGUSR1' },
    ])
  })

  it('does not report a change when the mode stays the same', () => {
    const machine = new ModeMachine({ readOnly: true })
    const changes = recording(machine)
    machine.setReadOnly(true, 'again')
    machine.setStorageHealthy(false, 'ping failed')
    expect(changes).toEqual([])
    expect(machine.mode).toBe('read-only')
  })

  it('lets read-only win over degraded and falls back to degraded when read-only ends', () => {
    const machine = new ModeMachine({ readOnly: false })
    const changes = recording(machine)
    machine.setStorageHealthy(false, 'ping failed')
    machine.setReadOnly(true, 'admin')
    machine.setReadOnly(false, 'admin')
    machine.setStorageHealthy(true, 'ping ok')
    expect(changes.map((c) => c.mode)).toEqual(['degraded', 'read-only', 'degraded', 'normal'])
  })

  it('is read-only while either the local or the fleet switch is on', () => {
    const machine = new ModeMachine({ readOnly: false })
    const changes = recording(machine)
    machine.setFleetReadOnly(true, 'fleet on')
    machine.setReadOnly(true, 'SIGUSR1')
    expect(machine.readOnlySwitches).toEqual({ local: true, fleet: true })
    machine.setFleetReadOnly(false, 'fleet off')
    expect(machine.mode).toBe('read-only')
    machine.toggleReadOnly('SIGUSR1')
    expect(machine.mode).toBe('normal')
    expect(changes.map((c) => [c.mode, c.reason])).toEqual([
      ['read-only', 'fleet on'],
      ['normal', 'SIGUSR1'],
    ])
  })
})
