import {type ChildProcess, spawn} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {request} from 'node:http'
import {createServer, type Server, Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

/** The repository root (where package.json lives). */
export const REPO = fileURLToPath(new URL('../../', import.meta.url))
/** The built CLI entry, as npm's `amp-distro` launcher runs it. */
export const RUN_JS = join(REPO, 'bin', 'run.js')
export const PACKAGE = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {name: string; version: string}

export interface Finished {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** A port that was free a moment ago on 127.0.0.1 (the kernel picked it for a listener on port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const {port} = probe.address() as {port: number}
      probe.close(() => resolve(port))
    })
  })
}

const holders = new Set<Server>()

/** A real program holding a port on 127.0.0.1: it accepts connections and says nothing. `cleanup()` closes it if the test has not. */
export async function holdPort(): Promise<{holder: Server; port: number}> {
  const holder = createServer((socket) => socket.destroy())
  await new Promise<void>((resolve) => holder.listen({host: '127.0.0.1', port: 0}, resolve))
  holders.add(holder)
  holder.once('close', () => holders.delete(holder))
  return {holder, port: (holder.address() as {port: number}).port}
}

/** Closes a server a test may or may not have started. */
export function closeServer(server: {close: (callback: () => void) => unknown} | undefined): Promise<void> {
  return new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()))
}

const homes: string[] = []

/** A fresh, empty directory to use as HOME; removed by `cleanup()`. */
export function tempHome(prefix = 'amp-distro-home-'): string {
  const home = mkdtempSync(join(tmpdir(), prefix))
  homes.push(home)
  return home
}

const children = new Set<ChildProcess>()

/** Spawns a process that `cleanup()` kills if the test has not ended it. */
export function track(child: ChildProcess): ChildProcess {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

/** Kills every tracked process still running, closes the port holders and removes temporary homes. */
export async function cleanup(): Promise<void> {
  await Promise.all([...holders].map((holder) => closeServer(holder)))
  await Promise.all(
    [...children].map(async (child) => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL')
        await exitOf(child)
      }
    }),
  )
  for (const home of homes.splice(0)) rmSync(home, {recursive: true, force: true})
}

/** The environment a CLI child gets: this one, with HOME replaced. */
export function envFor(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {...process.env, HOME: home, ...extra}
}

/** Resolves when `child` exits (at once if it already has). */
export function exitOf(child: ChildProcess): Promise<{code: number | null; signal: NodeJS.Signals | null}> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({code: child.exitCode, signal: child.signalCode})
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({code, signal})))
}

/** A running child with its output collected so far. */
export interface Running {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  /** Waits for the exit and returns everything it printed. */
  finished: () => Promise<Finished>
}

/** Starts `node <file> ...args` with stdin closed and output collected. */
export function start(file: string, args: string[], options: {env?: NodeJS.ProcessEnv; cwd?: string; nodeArgs?: string[]} = {}): Running {
  const child = track(spawn(process.execPath, [...(options.nodeArgs ?? []), file, ...args], {cwd: options.cwd ?? REPO, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe']}))
  let out = ''
  let err = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk))
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()))
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    async finished() {
      const {code, signal} = await exitOf(child)
      await closed
      return {code, signal, stdout: out, stderr: err}
    },
  }
}

/** Runs the built CLI (`node bin/run.js ...args`) to completion; killed after `timeoutMs`. */
export async function runCli(args: string[], options: {env?: NodeJS.ProcessEnv; timeoutMs?: number} = {}): Promise<Finished> {
  const run = start(RUN_JS, args, {env: options.env})
  const timer = setTimeout(() => run.child.kill('SIGKILL'), options.timeoutMs ?? 15_000)
  try {
    return await run.finished()
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Runs the same invocation through oclif's `execute` directly, the oclif
 * bundle required as bin/run.js requires it when the fast path declines;
 * process.argv looks as it would under bin/run.js, since oclif reads it for
 * help and error output.
 */
export async function runOclif(args: string[], options: {env?: NodeJS.ProcessEnv; timeoutMs?: number} = {}): Promise<Finished> {
  const code = [
    'const args = process.argv.slice(1)',
    `process.argv = [process.argv[0], ${JSON.stringify(RUN_JS)}, ...args]`,
    `require(${JSON.stringify(join(REPO, 'dist', 'oclif.cjs'))}).execute({dir: ${JSON.stringify(REPO)}, args})`,
  ].join('\n')
  const run = start('--', args, {env: options.env, nodeArgs: ['--input-type=commonjs', '-e', code]})
  const timer = setTimeout(() => run.child.kill('SIGKILL'), options.timeoutMs ?? 15_000)
  try {
    return await run.finished()
  } finally {
    clearTimeout(timer)
  }
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

export interface HttpAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** One HTTP request on a fresh connection. */
export function http(url: string, method = 'GET'): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, {method, agent: false, timeout: 10_000}, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, body}))
    })
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${url}`)))
    req.on('error', reject)
    req.end()
  })
}

/** True when something accepts TCP connections on host:port. */
export function accepts(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket()
    socket.setTimeout(2000)
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('timeout', () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('error', () => resolve(false))
    socket.connect(port, host)
  })
}

/** A raw TCP connection to 127.0.0.1:port, with everything it receives collected. */
export async function rawConnection(port: number): Promise<{socket: Socket; received: () => string; closed: Promise<void>}> {
  const socket = new Socket()
  let data = ''
  socket.setEncoding('utf8').on('data', (chunk: string) => (data += chunk))
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  socket.on('error', () => undefined)
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
    socket.connect(port, '127.0.0.1')
  })
  return {socket, received: () => data, closed}
}

/** True when stderr holds a JavaScript stack trace. */
export function hasStackTrace(text: string): boolean {
  return /^\s+at .+(:\d+:\d+\)?|\(node:.+\))$/m.test(text)
}

/** Where `serve` writes its PID for a given HOME. */
export function serverPidFile(home: string): string {
  return join(home, '.amplifier', 'server', 'server.pid')
}
