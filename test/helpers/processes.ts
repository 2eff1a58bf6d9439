import {type ChildProcess, spawn} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {get} from 'node:http'

import {envFor, track} from './cli.js'

/**
 * The environment for a CLI under test: `envFor(home)` without the
 * supervisor markers, so that a test run from inside a systemd unit (or a
 * launchd job) still gets a standalone watchdog, and without variables that
 * would point binary resolution or unit paths elsewhere.
 */
export function standaloneEnv(home: string): NodeJS.ProcessEnv {
  const dropped = new Set(['INVOCATION_ID', 'LAUNCHD_JOB_NAME', 'AMP_DISTRO_BINPATH', 'XDG_CONFIG_HOME'])
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
