import {type ChildProcess, spawn} from 'node:child_process'
import {existsSync, mkdtempSync} from 'node:fs'
import {get} from 'node:http'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

/** The repository root (where `bin/run.js` and `dist/` live). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** The built CLI entry; `npm run build` must have run first. */
export const RUN_JS = join(REPO_ROOT, 'bin', 'run.js')

/** Throws a clear message when there is no build, instead of a confusing spawn failure later. */
export function requireBuild(): void {
  if (!existsSync(join(REPO_ROOT, 'dist', 'fast-path.js')) || !existsSync(join(REPO_ROOT, 'oclif.manifest.json'))) {
    throw new Error(`no build found in ${REPO_ROOT}: run \`npm run build\` first`)
  }
}

/** A free TCP port on 127.0.0.1 (bound on port 0, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen({host: '127.0.0.1', port: 0}, () => {
      const address = probe.address()
      probe.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
    })
  })
}

/** A temporary HOME. */
export function tempHome(prefix = 'amp-distro-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

/**
 * The environment for a CLI under test: the caller's, with `HOME` replaced
 * and the supervisor markers removed (a test run from inside a systemd unit
 * would otherwise turn a standalone watchdog into a supervised one).
 */
export function cliEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const dropped = new Set(['INVOCATION_ID', 'LAUNCHD_JOB_NAME', 'AMP_DISTRO_BINPATH', 'XDG_CONFIG_HOME'])
  const kept = Object.entries(process.env).filter(([name]) => !dropped.has(name))
  return {...Object.fromEntries(kept), HOME: home, ...extra}
}

/** Polls `probe` until it returns something other than undefined/false, or throws after `timeoutMs`. */
export async function pollUntil<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, what: string, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

/** A child process with its collected output, its exit, and a stop that always ends it. */
export interface Running {
  child: ChildProcess
  pid: number
  output: () => string
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  exited: Promise<number | string>
  /** SIGTERM (after SIGCONT), then SIGKILL after `graceMs`; resolves once it has exited. */
  stop: (graceMs?: number) => Promise<void>
}

/** Spawns a process (no shell) and keeps its stdout and stderr. */
export function launch(file: string, args: string[], options: {env?: NodeJS.ProcessEnv} = {}): Running {
  const child = spawn(file, args, {env: options.env ?? process.env, cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe']})
  let out = ''
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()))
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'))
  })
  if (child.pid === undefined) throw new Error(`could not start ${file}`)
  const running: Running = {
    child,
    pid: child.pid,
    output: () => out,
    exited,
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return
      signal(child.pid!, 'SIGCONT')
      signal(child.pid!, 'SIGTERM')
      const timer = setTimeout(() => signal(child.pid!, 'SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
    },
  }
  return running
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
