import { execFileSync } from 'node:child_process'
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, release, totalmem } from 'node:os'
import { dirname } from 'node:path'

/** Where and on what a benchmark ran, for the record. */
export interface RunContext {
  date: string
  cpuModel: string
  cores: number
  memory: string
  kernel: string
  node: string
  commit: string
}

function git(root: string, args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim()
  } catch {
    return ''
  }
}

/**
 * The commit, and whether src/ differed from it, as the run began: dist/ is built then, and
 * src/ edited during a long run must not relabel its figures.
 */
const commitAtStart = new Map<string, string>()

function describeCommit(root: string): string {
  const commit = git(root, ['rev-parse', '--short', 'HEAD']) || 'unknown'
  // dist/ is built from the working tree, which may differ from the commit.
  const dirty = git(root, ['status', '--porcelain', '--', 'src']) !== ''
  return dirty ? `${commit} (with uncommitted changes in src/)` : commit
}

/** Notes the commit for `root` now (call as the run starts); runContext reports this one. */
export function noteCommitAtStart(root: string): void {
  if (!commitAtStart.has(root)) commitAtStart.set(root, describeCommit(root))
}

export function runContext(root: string): RunContext {
  let cpuModel = cpus()[0]?.model ?? 'unknown'
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    if (match) cpuModel = (match[1] as string).trim()
  } catch {
    // not Linux: os.cpus() had it
  }
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    cpuModel,
    cores: cpus().length,
    memory: bytes(totalmem()),
    kernel: `Linux ${release()}`,
    node: process.version,
    commit: commitAtStart.get(root) ?? describeCommit(root),
  }
}

export function bytes(n: number): string {
  if (!Number.isFinite(n)) return String(n)
  const sign = n < 0 ? '-' : ''
  let v = Math.abs(n)
  for (const unit of ['B', 'KiB', 'MiB', 'GiB']) {
    if (v < 1024 || unit === 'GiB')
      return `${sign}${v < 10 && unit !== 'B' ? v.toFixed(2) : v.toFixed(unit === 'B' ? 0 : 1)} ${unit}`
    v /= 1024
  }
  return `${n} B`
}

export function ms(n: number): string {
  if (!Number.isFinite(n)) return String(n)
  if (n >= 10_000) return `${(n / 1000).toFixed(1)} s`
  if (n >= 1000) return `${(n / 1000).toFixed(2)} s`
  if (n >= 100) return `${n.toFixed(0)} ms`
  if (n >= 10) return `${n.toFixed(1)} ms`
  return `${n.toFixed(2)} ms`
}

export function count(n: number): string {
  return Math.round(n).toLocaleString('en-US')
}

export function percent(n: number): string {
  return `${n.toFixed(1)} %`
}

/** A Markdown table; cells are escaped for `|`. */
export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|')
  const line = (cells: readonly string[]) => `| ${cells.map(cell).join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

/** A plain-text table for the terminal. */
export function textTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = []
  for (const row of rows) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)))
  return rows
    .map((row) =>
      row
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}

const INTRO = `# Benchmarks

Load harnesses live in \`bench/\` and are never run by \`npm test\`. Each run appends a
section below; older sections stay as they were measured, so compare figures only between
sections that name the same machine and command.

## How to reproduce

\`\`\`sh
npm ci
npm run bench                      # 1,000 SSE clients; builds dist/ first
npm run bench -- --clients 100     # options: --clients --rate --events --burst --writers --idle
npm run bench -- --help
\`\`\`

The server runs as a separate process (\`node --inspect=127.0.0.1:0 dist/main.js\`, embedded
PGlite and filesystem storage in a fresh temporary folder, log level \`warn\`) and is measured
from outside: RSS from \`/proc/<pid>/status\` (VmRSS), CPU from \`/proc/<pid>/stat\` (utime +
stime). Memory is read after a full garbage collection forced through the inspector, because
PGlite's start-up leaves a few hundred MiB of buffers that only the next major GC frees: an RSS
taken without one mostly tells when V8 last collected ("as found" is listed beside it). The
load client opens raw-socket SSE connections with the first-start admin token and records when
each socket delivered each event's \`id:\` line; latency is from just before the
\`POST /api/items\` was sent to that moment, over every (event, client) pair. "Fan-out
spread" is, per event, the time from the first client's delivery to the last one's: the
broadcast alone, without the write path in front of it. Every client must get every event
exactly once and in increasing id order (checked against the server's own log, read back by
replay); lost, duplicated and out-of-order deliveries are counted.

Every connection takes a file descriptor in the load client and one in the server. Node raises
its soft open-file limit to the hard one by itself, so the hard limit (\`ulimit -Hn\`) is what
counts: the script stops with an explanation when it is below clients + 256 (10,000 clients
need about 10,300; raise it as root, in /etc/security/limits.conf or in the container's
\`nofile\` setting).

**The figures are from one 2-core machine, shared by the server and the load client**: the
load client's CPU and that of every other process on the machine are listed beside the
server's for each phase (as % of one core; 200 % is the whole machine). Everything they use
is taken from the server, so figures from a run where "other processes" is far from 0 are
skewed. They show orders of magnitude and regressions, not capacity.
`

/** Appends a section to the benchmark record, creating the file with its intro if missing. */
export function appendSection(path: string, section: string): void {
  mkdirSync(dirname(path), { recursive: true })
  if (!existsSync(path)) writeFileSync(path, INTRO)
  appendFileSync(path, `\n${section.trim()}\n`)
}

/** One run's figures and how it was made, as printed and recorded. */
export interface RunRecord {
  /** The section title after the date, e.g. "SSE fan-out, 1,000 clients". */
  title: string
  failed: boolean
  command: string
  options: string
  /** Further bullets after the machine, node and commit (server set-up, other load). */
  notes: string[]
  headers: string[]
  rows: string[][]
  /** Where the section is appended; undefined only prints. */
  report: string | undefined
  /** Printed after the commit on the summary line (e.g. the soak's seed). */
  suffix?: string
}

/**
 * Prints the table and where it ran; appends it to `report` with the machine, node version and
 * commit, so every recorded figure says what produced it.
 */
export function publishRun(root: string, run: RunRecord): void {
  const context = runContext(root)
  process.stdout.write(`\n${textTable([run.headers, ...run.rows])}\n\n`)
  process.stdout.write(
    `${context.cpuModel}, ${context.cores} cores, ${context.memory}; node ${context.node}; silo ${context.commit}${run.suffix ?? ''}\n`,
  )
  if (run.report === undefined || run.rows.length === 0) return
  const section = [
    `## ${context.date} — ${run.title}${run.failed ? ' (run had failures)' : ''}`,
    '',
    `- Command: \`${run.command}\``,
    `- Options: ${run.options}`,
    `- Machine: ${context.cpuModel}, ${context.cores} cores, ${context.memory} RAM, ${context.kernel}`,
    `- Node: ${context.node}`,
    `- silo: ${context.commit}`,
    ...run.notes.map((note) => `- ${note}`),
    '',
    markdownTable(run.headers, run.rows),
  ].join('\n')
  appendSection(run.report, section)
  process.stderr.write(`appended to ${run.report}\n`)
}
