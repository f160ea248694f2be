import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/**
 * What the kernel reports about a process (Linux /proc): resident memory, CPU time and the
 * open-file limit. The benchmarks measure the server from outside, as an operator would.
 */

function statusField(pid: number, field: string): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`)
  return Number(match[1]) * 1024
}

/** Resident set size in bytes (VmRSS). */
export function residentBytes(pid: number): number {
  return statusField(pid, 'VmRSS')
}

/** Peak resident set size in bytes since the process started (VmHWM). */
export function peakResidentBytes(pid: number): number {
  return statusField(pid, 'VmHWM')
}

let ticksPerSecond: number | undefined

/** USER_HZ, the unit of utime/stime in /proc/<pid>/stat (100 on every common Linux). */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
    } catch {
      ticksPerSecond = 100
    }
    if (!Number.isFinite(ticksPerSecond) || ticksPerSecond <= 0) ticksPerSecond = 100
  }
  return ticksPerSecond
}

/** User plus system CPU time the process has used so far, in milliseconds. */
export function cpuTimeMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name (field 2) may contain spaces and parentheses; fields after it are plain.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // Fields 14 (utime) and 15 (stime), counted from 1 with field 3 at index 0 here.
  const ticks = Number(fields[11]) + Number(fields[12])
  return (ticks * 1000) / clockTicksPerSecond()
}

/** A CPU-time reading to compare with a later one. */
export interface CpuSample {
  cpuMs: number
  at: number
}

export function sampleCpu(pid: number, now: number): CpuSample {
  return { cpuMs: cpuTimeMs(pid), at: now }
}

/** CPU used between two samples, in percent of one core. */
export function cpuPercent(from: CpuSample, to: CpuSample): number {
  const wall = to.at - from.at
  return wall > 0 ? ((to.cpuMs - from.cpuMs) / wall) * 100 : 0
}

/** This process's own CPU time (user + system) in milliseconds, from process.cpuUsage(). */
export function ownCpuTimeMs(): number {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1000
}

/** The soft and hard "Max open files" limits of this process. */
export function openFileLimit(): { soft: number; hard: number } {
  const limits = readFileSync('/proc/self/limits', 'utf8')
  const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits)
  const parse = (v: string | undefined) => (v === 'unlimited' ? Infinity : Number(v))
  return { soft: parse(match?.[1]), hard: parse(match?.[2]) }
}

/** CPU time of the whole machine (all cores) from /proc/stat, in milliseconds. */
export function machineCpuTimeMs(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? ''
  // cpu user nice system idle iowait irq softirq steal ...
  const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number)
  const total = ticks.reduce((a, b) => a + b, 0)
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0)
  const toMs = 1000 / clockTicksPerSecond()
  return { busy: (total - idle) * toMs, total: total * toMs }
}
