/**
 * Real processes measured through /proc: a spawn with a reliable stop, a
 * `serve` that is ready once health answers, RSS and CPU time. Shared by the
 * fault tests and the bench scripts; general helpers live in ../helpers/cli.ts.
 */
import {type ChildProcess, execFileSync, spawn} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {checkHealth} from '../../src/lib/health.js'
import {freePort, REPO, RUN_JS, waitFor} from '../helpers/cli.js'
import {requireBuild} from '../helpers/pack.js'

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

/** A running `amp-distro serve` from the built CLI. */
export interface ServeProcess extends Launched {
  home: string
  port: number
  url: string
}

/**
 * Starts the built `amp-distro serve` on 127.0.0.1 with its own HOME and
 * waits until `/api/health` answers 200. The process is node itself (no
 * shell or wrapper), so `pid` is the server's PID.
 */
export async function startServe(options: {home: string; port?: number; readyTimeoutMs?: number}): Promise<ServeProcess> {
  requireBuild()
  const port = options.port ?? (await freePort())
  const running = launch(process.execPath, [RUN_JS, 'serve', '--host', '127.0.0.1', '--port', String(port)], {
    env: {...process.env, HOME: options.home},
  })
  const url = `http://127.0.0.1:${port}`
  try {
    await waitFor(
      `serve on port ${port} to answer health`,
      async () => {
        if (running.child.exitCode !== null) throw new Error(`serve exited with ${running.child.exitCode}: ${running.output()}`)
        return (await checkHealth(`${url}/api/health`, 1000)).healthy
      },
      options.readyTimeoutMs ?? 20_000,
      50,
    )
  } catch (error) {
    await running.stop()
    throw error
  }

  return {...running, home: options.home, port, url}
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
