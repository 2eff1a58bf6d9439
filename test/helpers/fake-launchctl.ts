import {chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {execCommand, streamLines} from '../../src/lib/process/exec.js'
import type {ServiceContext} from '../../src/lib/service/types.js'

const SCRIPT = fileURLToPath(new URL('fake-launchctl.mjs', import.meta.url))

/** How the fake answers; written to `config.json` in its folder, read on every call. */
export interface FakeLaunchctlConfig {
  /** Static mode: a job's process exits cleanly on `launchctl kill` (by default it ignores the signal). */
  exitsOnSignal?: boolean
  /** Subcommands the fake does not know, as launchctl before macOS 10.10 (no bootstrap, bootout, print, enable). */
  unsupported?: string[]
  /** How an unknown subcommand is refused: `usage` prints usage and exits 64; `unknown` prints a one-line error and exits 1. */
  unsupportedStyle?: 'usage' | 'unknown'
  /**
   * Runs the jobs for real: bootstrap starts a process that plays launchd for the job (it starts the
   * plist's ProgramArguments, restarts them as KeepAlive says, and tears them down on bootout).
   * Without it, loaded jobs run nothing and `print` reports `state`, `pid` and `lastExitCode` below.
   */
  spawn?: boolean
  /** Without spawn: the state `print` reports for a loaded job (`running` by default). */
  state?: string
  /** Without spawn: the PID reported for a running job. */
  pid?: number
  /** Without spawn: the last exit code reported for a loaded job that is not running (1 by default). */
  lastExitCode?: number
  /** Without spawn: how many `print` calls a booted-out job stays visible for; bootstrap answers 5 meanwhile. */
  drain?: number
  /** Makes `bootstrap` fail with 5, as launchd does for a plist it cannot use. */
  failBootstrap?: boolean
  /** How many bootstrap or kickstart requests answer 37 (`Operation already in progress`) before one succeeds. */
  busy?: number
  /** How many calls of a subcommand answer 36 (`Operation now in progress`) before one succeeds. */
  inProgress?: Partial<Record<'bootout' | 'kickstart', number>>
  /** How kickstart and bootout answer for a job launchd does not hold: 113 (`Could not find …`) or 3 (`No such process`). */
  missing?: 113 | 3
  /** No GUI login session: gui/<uid> targets answer 112 (print, kickstart, bootout, kill) and 125 (bootstrap); user/<uid> works. */
  noGuiDomain?: boolean
  /** A subcommand that never answers. */
  hang?: string
  /** Time between SIGTERM and SIGKILL on bootout, in ms, instead of the plist's ExitTimeOut (5 s when unset). */
  exitTimeoutMs?: number
  /** How long after a bootout the label still refuses bootstrap with 5, in ms (2 s by default). */
  teardownMs?: number
  /** Time between two starts of a job, in ms, instead of the plist's ThrottleInterval. */
  throttleMs?: number
  /** The HOME launchd gives the jobs (the user's home). */
  home?: string
}

/** A fake `launchctl` in its own temporary folder, meant to go first on a PATH. */
export interface FakeLaunchctl {
  dir: string
  /** Every argument vector the fake was called with, in order. */
  calls(): string[][]
  clearCalls(): void
  configure(config: FakeLaunchctlConfig): void
  /** Labels the fake holds as loaded, with the plist each came from. */
  loaded(): Record<string, string>
  /** Makes launchd forget every job, as after a reboot with the agents removed from its database. */
  unloadAll(): void
  /** spawn mode: the PID of the job's process while it runs. */
  pidOf(label: string): number | undefined
  /** spawn mode: what launchd records for a job (state, runs, raw wait status, job state), or undefined when it is not loaded. */
  job(label: string): {state: string; runs: number; pid?: number; lastStatus?: number; jobState?: string} | undefined
  /** Kills every process the fake started, then removes its folder. */
  cleanup(): void
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

interface JobFile {
  plist: string
  pid?: number
  supervisor?: number
  state: string
  runs: number
  lastStatus?: number
  jobState?: string
}

/**
 * Writes the fake launchctl into a new temporary folder: a `launchctl`
 * that runs fake-launchctl.mjs with this Node, whatever PATH the caller
 * passes on.
 */
export function createFakeLaunchctl(): FakeLaunchctl {
  const dir = mkdtempSync(join(tmpdir(), 'fake-launchctl-'))
  const quote = (value: string) => `'${value.replaceAll("'", String.raw`'\''`)}'`
  writeFileSync(join(dir, 'launchctl'), `#!/bin/sh\nexec ${quote(process.execPath)} ${quote(SCRIPT)} ${quote(dir)} "$@"\n`)
  chmodSync(join(dir, 'launchctl'), 0o755)
  const jobsDir = join(dir, 'jobs')
  mkdirSync(jobsDir)
  const callsFile = join(dir, 'calls.jsonl')
  const readJobs = (): Record<string, JobFile> =>
    Object.fromEntries(
      readdirSync(jobsDir)
        .filter((name) => name.endsWith('.json'))
        .flatMap((name) => {
          try {
            return [[name.slice(0, -'.json'.length), JSON.parse(readFileSync(join(jobsDir, name), 'utf8')) as JobFile]]
          } catch {
            return []
          }
        }),
    )
  return {
    dir,
    calls: () =>
      existsSync(callsFile)
        ? readFileSync(callsFile, 'utf8')
            .split('\n')
            .filter((line) => line.length > 0)
            .map((line) => JSON.parse(line) as string[])
        : [],
    clearCalls: () => rmSync(callsFile, {force: true}),
    configure(config) {
      writeFileSync(join(dir, 'config.json'), JSON.stringify(config))
      rmSync(join(dir, 'counters.json'), {force: true})
    },
    loaded: () => Object.fromEntries(Object.entries(readJobs()).map(([label, job]) => [label, job.plist])),
    unloadAll() {
      const supervisors = Object.values(readJobs())
        .map((job) => job.supervisor)
        .filter((pid): pid is number => pid !== undefined && running(pid))
      for (const pid of supervisors) process.kill(pid, 'SIGTERM')
      // A supervisor may still save its job file while the signal reaches it: wait (at most 5 s) until each has exited.
      const deadline = Date.now() + 5000
      const pause = new Int32Array(new SharedArrayBuffer(4))
      while (supervisors.some(running) && Date.now() < deadline) Atomics.wait(pause, 0, 0, 10)
      rmSync(jobsDir, {recursive: true, force: true})
      mkdirSync(jobsDir, {recursive: true})
    },
    pidOf(label) {
      const pid = readJobs()[label]?.pid
      return pid !== undefined && running(pid) ? pid : undefined
    },
    job: (label) => readJobs()[label],
    cleanup() {
      for (const job of Object.values(readJobs())) {
        for (const pid of [job.supervisor, job.pid]) if (pid !== undefined && running(pid)) process.kill(pid, 'SIGKILL')
      }

      rmSync(dir, {recursive: true, force: true, maxRetries: 20, retryDelay: 25})
    },
  }
}

/**
 * The service context launchd tests run with: `home`, a PATH (a fake
 * launchctl's folder first, for a test that has one), user ada with uid
 * 501, and the real command runner; `overrides` set the rest.
 */
export function launchdContext(home: string, PATH: string, overrides: Partial<ServiceContext> = {}): ServiceContext {
  return {
    home,
    env: {PATH},
    uid: 501,
    user: 'ada',
    exec: execCommand,
    stream: streamLines,
    version: '0.3.0',
    nodePath: process.execPath,
    resolveBinary: () => ({path: '/usr/local/bin/amp-distro'}),
    ...overrides,
  }
}
