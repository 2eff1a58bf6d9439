import {readPid, removePidIfOwned} from './pidfile.js'
import {isAlive, isToolProcess} from './procs.js'

/** What stopping the process named in a PID file came to. */
export type StopOutcome =
  /** No PID file, or one with garbage in it. */
  | {kind: 'absent'}
  /** The file named a dead process or one that is not ours; the file was removed and nothing was signalled. */
  | {kind: 'stale'; pid: number; alive: boolean}
  /** The process exited after SIGTERM. */
  | {kind: 'stopped'; pid: number}
  /** The process ignored SIGTERM for the whole grace period and was killed. */
  | {kind: 'killed'; pid: number}

export interface StopDeps {
  /** True when `pid` is the kind of process this PID file is for (an `amp-distro serve`). */
  isOurs: (pid: number) => boolean
  isAlive: (pid: number) => boolean
  kill: (pid: number, signal: NodeJS.Signals) => void
  sleep: (ms: number) => Promise<void>
  /** Monotonic milliseconds. */
  now: () => number
  /** How long SIGTERM gets before SIGKILL, in ms. */
  graceMs: number
  /** How often to look whether the process is gone, in ms. */
  pollMs?: number
}

/** The real effects: `amp-distro serve` recognition, real signals, the real clock, a 10-second grace period. */
export function serverStopDeps(graceMs = 10_000): StopDeps {
  return {
    isOurs: (pid) => isToolProcess(pid, 'serve'),
    isAlive,
    kill: (pid, signal) => process.kill(pid, signal),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    now: () => performance.now(),
    graceMs,
  }
}

function trySignal(deps: StopDeps, pid: number, signal: NodeJS.Signals): void {
  try {
    deps.kill(pid, signal)
  } catch (error) {
    // ESRCH: it exited between the check and the signal, which is what we want anyway.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error
  }
}

async function waitGone(deps: StopDeps, pid: number, ms: number): Promise<boolean> {
  const deadline = deps.now() + ms
  const poll = deps.pollMs ?? 100
  while (deps.isAlive(pid)) {
    if (deps.now() >= deadline) return false
    await deps.sleep(poll)
  }

  return true
}

/**
 * Stops the process named in `pidFile`.
 *
 * 1. A missing or garbage PID file: nothing to do.
 * 2. The PID must be a live process of ours (`deps.isOurs`) before any
 *    signal is sent: a PID file left over from a reboot can name an unrelated
 *    process, which is never signalled; the stale file is removed.
 * 3. SIGTERM, followed at once by SIGCONT, so that a stopped (SIGSTOP) process
 *    wakes up to handle the TERM and shut down cleanly, as systemd does too.
 * 4. Waits up to `graceMs` for it to exit, then SIGKILL and waits for it to go.
 * 5. Removes the PID file if it still names that process (a clean exit
 *    removes it already).
 */
export async function stopFromPidFile(pidFile: string, deps: StopDeps): Promise<StopOutcome> {
  const pid = readPid(pidFile)
  if (pid === undefined) return {kind: 'absent'}
  const alive = deps.isAlive(pid)
  if (!alive || !deps.isOurs(pid)) {
    removePidIfOwned(pidFile, pid)
    return {kind: 'stale', pid, alive}
  }

  trySignal(deps, pid, 'SIGTERM')
  trySignal(deps, pid, 'SIGCONT')
  let outcome: StopOutcome = {kind: 'stopped', pid}
  if (!(await waitGone(deps, pid, deps.graceMs))) {
    trySignal(deps, pid, 'SIGKILL')
    outcome = {kind: 'killed', pid}
    // SIGKILL cannot be caught; the wait only covers the kernel tearing the process down.
    await waitGone(deps, pid, 5000)
  }

  removePidIfOwned(pidFile, pid)
  return outcome
}
