import { performance } from 'node:perf_hooks'
import { cpuPercent, machineCpuTimeMs, ownCpuTimeMs, sampleCpu, type CpuSample } from './procfs.js'

/** CPU over a stretch of a run, each in percent of one core. */
export interface CpuFigures {
  server: number
  /** This process: the load client. */
  client: number
  /** Every other process on the machine (a concurrent build or test run skews the figures). */
  other: number
}

export interface PhaseCost {
  cpu: CpuFigures
  /** Server CPU time used, in milliseconds (less sensitive to other load than wall times). */
  serverCpuMs: number
  wallMs: number
}

/** Measures server, load-client and other CPU from construction to stop(). */
export class CostMeter {
  private readonly server: CpuSample
  private readonly own = ownCpuTimeMs()
  private readonly machine = machineCpuTimeMs().busy
  private readonly started = performance.now()

  constructor(private readonly pid: number) {
    this.server = sampleCpu(pid, this.started)
  }

  stop(): PhaseCost {
    const now = performance.now()
    const wallMs = now - this.started
    const server = cpuPercent(this.server, sampleCpu(this.pid, now))
    const client = ((ownCpuTimeMs() - this.own) / wallMs) * 100
    const machine = ((machineCpuTimeMs().busy - this.machine) / wallMs) * 100
    return {
      cpu: { server, client, other: Math.max(0, machine - server - client) },
      serverCpuMs: (server / 100) * wallMs,
      wallMs,
    }
  }
}
