/**
 * Start-up time and memory of amp-distro against bare Node on this machine.
 *
 * Times `node -e 0` (the floor) and the CLI's commands side by side in one
 * hyperfine session, then the settled RSS of the long-running `serve` and
 * `watchdog` against an idle bare Node. Prints each as a ratio with its
 * target and exits 1 when a target is missed. Run it as `bench/startup`
 * (after `npm run build`), optionally with the command to measure, e.g.
 * `bench/startup ~/.local/bin/amp-distro`; the default is this checkout's
 * `node bin/run.js`.
 */
import {execFileSync, spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {request} from 'node:http'
import {cpus, tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {freePort} from '../test/helpers/cli.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const RUNS = Number(process.env.BENCH_RUNS ?? 40)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10)

/** The command that runs amp-distro, as argv words. */
const cli: string[] = process.argv[2] ? [process.argv[2]] : [process.execPath, join(ROOT, 'bin', 'run.js')]

function quote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`
}

/** Command ids the CLI has, from its oclif manifest (next to bin/run.js, or asked from the CLI itself). */
function commandIds(): Set<string> {
  try {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, unknown>}
    if (!process.argv[2]) return new Set(Object.keys(manifest.commands))
  } catch {
    // fall through to asking the CLI
  }

  const has = (words: string[]) => spawnSync(cli[0], [...cli.slice(1), ...words, '--help'], {stdio: 'ignore'}).status === 0
  return new Set(['service:status', 'watchdog', 'serve'].filter((id) => has(id.split(':'))))
}

interface Case {
  name: string
  args: string[]
  target: number
  needs?: string
}

const CASES: Case[] = [
  {name: 'amp-distro --version', args: ['--version'], target: 1.3},
  {name: 'amp-distro --help', args: ['--help'], target: 2},
  {name: 'amp-distro serve --help', args: ['serve', '--help'], target: 2, needs: 'serve'},
  {name: 'amp-distro service status', args: ['service', 'status'], target: 1.5, needs: 'service:status'},
  {name: 'amp-distro watchdog --help', args: ['watchdog', '--help'], target: 2, needs: 'watchdog'},
]

interface HyperfineResult {
  times: number[]
  user: number
  system: number
}

let failed = false
function verdict(ratio: number, target: number): string {
  if (ratio <= target) return `ok (target ≤ ${target.toFixed(2)}×)`
  failed = true
  return `OVER (target ≤ ${target.toFixed(2)}×)`
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/**
 * Runs hyperfine in ROUNDS short rounds over all commands rather than once
 * per command, so that load from other processes, which comes and goes,
 * falls on every command alike; the medians are over all rounds.
 */
function timings(home: string): void {
  const ids = commandIds()
  const cases = CASES.filter((entry) => {
    if (!entry.needs || ids.has(entry.needs)) return true
    console.log(`skipped: ${entry.name} (no ${entry.needs.replace(':', ' ')} command in this build)`)
    return false
  })
  const floor = `${quote(process.execPath)} -e 0`
  const commands = [floor, ...cases.map((entry) => [...cli, ...entry.args].map((word) => quote(word)).join(' '))]
  const names = ['node -e 0', ...cases.map((entry) => entry.name)]
  const json = join(home, 'hyperfine.json')
  const times: number[][] = commands.map(() => [])
  const cpu: number[][] = commands.map(() => [])
  const perRound = Math.max(1, Math.round(RUNS / ROUNDS))
  for (let round = 0; round < ROUNDS; round++) {
    const run = spawnSync(
      'hyperfine',
      ['-N', '--warmup', round === 0 ? '3' : '1', '--runs', String(perRound), '-i', '--style', 'none', '--export-json', json, ...names.flatMap((name) => ['-n', name]), ...commands],
      {stdio: ['ignore', 'ignore', 'inherit'], env: {...process.env, HOME: home}},
    )
    if (run.error || run.status !== 0) throw new Error(`hyperfine failed${run.error ? `: ${run.error.message}` : ''} (install it: apt-get install hyperfine)`)
    const {results} = JSON.parse(readFileSync(json, 'utf8')) as {results: HyperfineResult[]}
    results.forEach((result, i) => {
      times[i].push(...result.times)
      cpu[i].push(result.user + result.system)
    })
  }

  const ms = (seconds: number) => `${(seconds * 1000).toFixed(1).padStart(6)} ms`
  const base = median(times[0])
  const baseCpu = median(cpu[0])
  console.log(`\nStart-up: ${ROUNDS} rounds of ${perRound} runs each; medians, and ratios of medians to node -e 0:`)
  console.log(`  ${''.padEnd(28)} ${'wall'.padStart(9)}  ratio  ${'user+sys'.padStart(9)}  ratio`)
  console.log(`  ${'node -e 0'.padEnd(28)} ${ms(base)}  1.00×  ${ms(baseCpu)}  1.00×`)
  cases.forEach((entry, i) => {
    const ratio = median(times[i + 1]) / base
    const cpuRatio = median(cpu[i + 1]) / baseCpu
    console.log(`  ${entry.name.padEnd(28)} ${ms(median(times[i + 1]))}  ${ratio.toFixed(2)}×  ${ms(median(cpu[i + 1]))}  ${cpuRatio.toFixed(2)}×  ${verdict(ratio, entry.target)}`)
  })
}

function healthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({host: '127.0.0.1', port, path: '/api/health', agent: false, timeout: 1000}, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(false))
    req.end()
  })
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Resident set size in KiB (`ps` works on Linux and macOS). */
function rssKiB(pid: number): number {
  return Number(execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], {encoding: 'utf8'}).trim())
}

/** RSS after the process has run idle for a while: the last of several samples. */
async function settledRss(child: ChildProcess, settleMs = 3000): Promise<number> {
  const {pid} = child
  if (pid === undefined) throw new Error('process did not start')
  let rss = 0
  for (const deadline = Date.now() + settleMs; Date.now() < deadline; ) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`process ${child.pid} exited during the memory check`)
    rss = rssKiB(pid)
    await sleep(250)
  }

  return rss
}

async function memory(home: string): Promise<void> {
  const children: ChildProcess[] = []
  const launch = (argv: string[]) => {
    const child = spawn(argv[0], argv.slice(1), {env: {...process.env, HOME: home}, stdio: 'ignore'})
    children.push(child)
    return child
  }

  try {
    const bare = await settledRss(launch([process.execPath, '-e', 'setInterval(()=>{},1e6)']))
    const port = await freePort()
    const server = launch([...cli, 'serve', '--port', String(port)])
    for (const deadline = Date.now() + 20_000; !(await healthy(port)); await sleep(100)) {
      if (Date.now() > deadline || server.exitCode !== null) throw new Error('serve did not answer /api/health within 20 s')
    }

    const rows: Array<[string, number]> = [['serve', await settledRss(server)]]
    if (commandIds().has('watchdog')) {
      const watchdog = launch([...cli, 'watchdog', '--port', String(port), '--check-interval', '1'])
      rows.push(['watchdog', await settledRss(watchdog)])
    } else {
      console.log('skipped: watchdog memory (no watchdog command in this build)')
    }

    console.log('\nSettled memory (RSS):')
    console.log(`  ${"node -e 'setInterval(()=>{},1e6)'".padEnd(36)} ${(bare / 1024).toFixed(1).padStart(6)} MiB  1.00×`)
    for (const [name, rss] of rows) {
      console.log(`  ${`amp-distro ${name}`.padEnd(36)} ${(rss / 1024).toFixed(1).padStart(6)} MiB  ${(rss / bare).toFixed(2)}×  ${verdict(rss / bare, 1.25)}`)
    }
  } finally {
    for (const child of children) child.kill('SIGTERM')
    await sleep(300)
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
}

const home = mkdtempSync(join(tmpdir(), 'amp-bench-startup-'))
try {
  console.log(`Machine: ${cpus().length} CPUs, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}; measuring: ${cli.map((word) => quote(word)).join(' ')}`)
  timings(home)
  await memory(home)
} finally {
  rmSync(home, {recursive: true, force: true})
}

process.exitCode = failed ? 1 : 0
