/**
 * Real processes for tests and benchmarks: a spawn with a reliable stop, a
 * `serve` that is ready once it listens, signals, states and sessions read
 * from /proc, RSS and CPU time. General helpers live in ./cli.ts.
 */
import {type ChildProcess, execFileSync, spawn} from 'node:child_process'
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {get} from 'node:http'
import {dirname, join} from 'node:path'

import {envFor, exitOf, freePort, REPO, RUN_JS, type Running, start, track, waitFor} from './cli.js'
import {requireBuild} from './pack.js'

/**
 * The environment for a CLI under test: `envFor(home)` without the
 * supervisor markers, so that a test run from inside a systemd unit (or a
 * launchd job) still gets a standalone watchdog, and without variables that
 * would point binary resolution or unit paths elsewhere.
 */
export function standaloneEnv(home: string): NodeJS.ProcessEnv {
  const dropped = new Set(['INVOCATION_ID', 'SYSTEMD_EXEC_PID', 'LAUNCHD_JOB_NAME', 'XPC_SERVICE_NAME', 'AMP_DISTRO_BINPATH', 'XDG_CONFIG_HOME'])
  return Object.fromEntries(Object.entries(envFor(home)).filter(([name]) => !dropped.has(name)))
}

/** Sends a signal, ignoring a process that is already gone. */
export function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error
  }
}

/** True while a process with this PID exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** The one-letter state of a process (field 3 of /proc/<pid>/stat): S, R, T (stopped), Z… */
export function stateOf(pid: number): string {
  const stat = readStat(pid)
  return stat[0]
}

/** The session a process belongs to (field 6 of /proc/<pid>/stat). */
export function sessionOf(pid: number): number {
  return Number(readStat(pid)[3])
}

function readStat(pid: number): string[] {
  // Fields after the command name, which is in parentheses and may hold spaces.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
}

/** An unrelated long-running process (`sleep 300`), killed by `cleanup()`. */
export function startUnrelated(): ChildProcess {
  return track(spawn('sleep', ['300'], {stdio: 'ignore'}))
}

/** The PID a healthy server reports on `/api/health`, or undefined when it does not answer 200. */
export function healthPid(port: number, timeoutMs = 2000): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = get({host: '127.0.0.1', port, path: '/api/health', agent: false, timeout: timeoutMs}, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => {
        try {
          resolve(res.statusCode === 200 ? (JSON.parse(body) as {pid: number}).pid : undefined)
        } catch {
          resolve(undefined)
        }
      })
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(undefined))
  })
}

/** Writes a PID file as an earlier process would have left it (its folder created as needed). */
export function writePidFile(file: string, content: number | string): void {
  mkdirSync(dirname(file), {recursive: true})
  writeFileSync(file, typeof content === 'number' ? `${content}\n` : content)
}

/** True when the built CLI has `command` (read from the oclif manifest, so it follows what is built). */
export function builtCommandExists(command: string): boolean {
  try {
    const manifest = JSON.parse(readFileSync(join(REPO, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, unknown>}
    return command in manifest.commands
  } catch {
    return false
  }
}

/** A child process with its collected output and a stop that always ends it. */
export interface Launched {
  child: ChildProcess
  pid: number
  output: () => string
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop: (graceMs?: number) => Promise<void>
}

/** Spawns a process (no shell), keeps its stdout and stderr, and gives it a reliable stop. */
export function launch(file: string, args: string[], options: {env?: NodeJS.ProcessEnv; cwd?: string} = {}): Launched {
  const child = spawn(file, args, {env: options.env ?? process.env, cwd: options.cwd ?? REPO, stdio: ['ignore', 'pipe', 'pipe']})
  let out = ''
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()))
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once('exit', () => resolve())
  })
  if (child.pid === undefined) throw new Error(`could not start ${file}`)
  return {
    child,
    pid: child.pid,
    output: () => out,
    async stop(graceMs = 5000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
        await exited
        clearTimeout(timer)
      }
    },
  }
}

/** A running `amp-distro serve` from the built CLI, with its output and a reliable stop. */
export interface ServeProcess extends Running {
  pid: number
  home: string
  port: number
  url: string
  /** Its stdout and then its stderr. */
  output: () => string
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop: (graceMs?: number) => Promise<void>
}

/**
 * Starts the built `amp-distro serve` on 127.0.0.1 (unless `args` name
 * another `--host`) with its own HOME, and waits until it says it listens:
 * it has claimed its PID file and bound the port by then. The process is
 * node itself (no shell or wrapper), so `pid` is the server's PID; a test's
 * `cleanup()` kills it if the test has not stopped it.
 */
export async function startServe(options: {home: string; port?: number; args?: string[]; readyTimeoutMs?: number}): Promise<ServeProcess> {
  requireBuild()
  const port = options.port ?? (await freePort())
  const args = options.args ?? []
  const host = args.includes('--host') ? [] : ['--host', '127.0.0.1']
  const run = start(RUN_JS, ['serve', ...host, '--port', String(port), ...args], {env: envFor(options.home)})
  const stop = async (graceMs = 5000) => {
    if (run.child.exitCode !== null || run.child.signalCode !== null) return
    run.child.kill('SIGTERM')
    const timer = setTimeout(() => run.child.kill('SIGKILL'), graceMs)
    await exitOf(run.child)
    clearTimeout(timer)
  }

  try {
    await waitFor(
      `serve on port ${port} to listen`,
      () => {
        if (run.child.exitCode !== null || run.child.signalCode !== null) {
          throw new Error(`serve exited early (${run.child.exitCode ?? run.child.signalCode}): ${run.stderr()}`)
        }

        return run.stdout().includes('listening on')
      },
      options.readyTimeoutMs ?? 20_000,
    )
  } catch (error) {
    await stop()
    throw error
  }

  return {...run, pid: run.child.pid!, home: options.home, port, url: `http://127.0.0.1:${port}`, output: () => run.stdout() + run.stderr(), stop}
}

/** Resident set size of a Linux process in bytes (`VmRSS` in `/proc/<pid>/status`). */
export function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!match) throw new Error(`no VmRSS for PID ${pid}`)
  return Number(match[1]) * 1024
}

let clockTicks: number | undefined

/** Clock ticks per second for `/proc/<pid>/stat` times (`getconf CLK_TCK`, 100 when it cannot say). */
export function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], {encoding: 'utf8'}).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }

  return clockTicks
}

/** User plus system CPU time of a Linux process, in seconds (fields 14 and 15 of `/proc/<pid>/stat`). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name (field 2) may contain spaces and parentheses: count fields after its closing one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond()
}
