import {existsSync, statSync} from 'node:fs'
import {setTimeout as sleepFor} from 'node:timers/promises'

import {EXIT_CONFIG, UserError} from '../../../errors.js'
import {NAMES} from '../../../paths.js'
import type {DriverContext} from '../../driver.js'
import type {ExecResult} from '../../types.js'
import {EXIT_TIMEOUT_SECONDS, type LaunchdJob, THROTTLE_SECONDS} from './plist.js'

const LAUNCHCTL = 'launchctl'

/** Time as the launchctl driver waits on it; tests pass one that needs no real timers. */
export interface Clock {
  /** Monotonic milliseconds. */
  now(): number
  /** Resolves after `ms`; rejects once `signal` fires. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: async (ms, signal) => {
    await sleepFor(ms, undefined, signal ? {signal} : {})
  },
}

/** What launchctl reports for one job. */
export interface JobState {
  loaded: boolean
  /** launchd's word: running, not running, spawn scheduled…; `not-loaded` when launchd does not know the job. */
  state: string
  pid?: number
  /** The job's last exit code, once it has exited. */
  lastExitCode?: number
  /** The signal that ended the job's last run, when one did (`last terminating signal = Killed: 9`). */
  lastSignal?: number
  /** How many times launchd has started the job since it was loaded (`runs`), when print says. */
  runs?: number
  /** launchd's `job state` line, present on some answers: `spawn failed` when it could not start the program. */
  jobState?: string
}

/** A job launchd holds but does not run, whose last exit code is 78 (EX_CONFIG), whoever reported it. */
function exited78(state: JobState): boolean {
  return state.loaded && state.pid === undefined && state.lastExitCode === EXIT_CONFIG
}

/**
 * True when the server wrote to its stderr log (`file`) at or after
 * `sinceMs` (wall-clock ms). launchd opens that file for the server and
 * never writes to it itself, so a write is the server's own line.
 */
export function serverWroteSince(file: string, sinceMs: number): boolean {
  try {
    return statSync(file).mtimeMs >= sinceMs
  } catch {
    return false
  }
}

/**
 * Since when a job that launchd keeps starting has surely been started
 * again: launchd starts a failing job once every ThrottleInterval, so the
 * last start lies within that; twice the interval leaves room for a slow
 * machine. Status and the watchdog, which did not start the job themselves,
 * look for the server's own line from then on.
 */
export function lastStartBound(nowMs: number): number {
  return nowMs - 2 * THROTTLE_SECONDS * 1000
}

/**
 * True when launchd could not start the program at all: last exit code 78
 * with no process, and either `job state = spawn failed` or no line of the
 * server's own in its stderr log since the last start (`serverWrote`).
 * launchd reports its own failure to spawn (a log folder that is missing or
 * not writable, a program that is gone) as EX_CONFIG (78), the same code as
 * the server's own configuration error; only the server writes a line
 * before it exits 78 (see the note in the README, "When launchd cannot
 * start the program"). launchd tries again every ThrottleInterval.
 */
export function spawnFailed(state: JobState, serverWrote: boolean): boolean {
  return exited78(state) && (state.jobState === 'spawn failed' || !serverWrote)
}

/**
 * True for a job launchd holds but does not run whose server exited with
 * EXIT_CONFIG itself (it wrote its reason to its stderr log since the last
 * start): a configuration that can never work. launchd has no setting that
 * stops restarting it, so it starts it again every ThrottleInterval and each
 * start fails the same way.
 */
export function exitedWithConfigError(state: JobState, serverWrote: boolean): boolean {
  return exited78(state) && !spawnFailed(state, serverWrote)
}

/**
 * A loaded job that launchd has never started (`runs = 0`, no exit yet):
 * what an agent looks like when the user turned it off in System Settings →
 * General → Login Items (macOS 13 and later).
 */
export function neverRan(state: JobState): boolean {
  return state.loaded && state.pid === undefined && state.runs === 0 && state.lastExitCode === undefined && state.lastSignal === undefined
}

/**
 * Reads the top level of `launchctl print gui/<uid>/<label>`: one tab of
 * indentation, since nested blocks (endpoints, event triggers) carry keys of
 * the same names. `last exit code` is a number, a number with its name
 * (`78: EX_CONFIG`), or `(never exited)`.
 */
export function parseLaunchctlPrint(text: string): Omit<JobState, 'loaded'> {
  const props = new Map<string, string>()
  for (const line of text.split('\n')) {
    const match = /^\t([^\t=][^=]*?) = (.*)$/.exec(line)
    if (match && !props.has(match[1])) props.set(match[1], match[2].trim())
  }

  const pid = props.get('pid')
  const exit = /^-?\d+/.exec(props.get('last exit code') ?? '')
  const signal = /(\d+)\s*$/.exec(props.get('last terminating signal') ?? '')
  const runs = props.get('runs')
  const jobState = props.get('job state')
  return {
    state: props.get('state') ?? 'unknown',
    ...(pid && /^\d+$/.test(pid) ? {pid: Number(pid)} : {}),
    ...(exit ? {lastExitCode: Number(exit[0])} : {}),
    ...(signal ? {lastSignal: Number(signal[1])} : {}),
    ...(runs && /^\d+$/.test(runs) ? {runs: Number(runs)} : {}),
    ...(jobState ? {jobState} : {}),
  }
}

/**
 * Reads `launchctl list <label>`, whose `"PID" = N;` line is there only
 * while the job runs. LastExitStatus is a raw wait status: the exit code
 * sits in its second byte (19968 is exit 78), a terminating signal in its
 * low seven bits (9 is SIGKILL).
 */
export function parseLaunchctlList(text: string): Omit<JobState, 'loaded'> {
  const match = /"PID"\s*=\s*(\d+);/.exec(text)
  const status = Number(/"LastExitStatus"\s*=\s*(\d+);/.exec(text)?.[1] ?? 0)
  const exited = status === 0 ? {} : status & 0x7f ? {lastSignal: status & 0x7f} : {lastExitCode: status >> 8}
  return match ? {state: 'running', pid: Number(match[1])} : {state: 'not running', ...exited}
}

/** How launchctl refused a request, from its exit code and words. */
export type Refusal =
  /** 113 (`Could not find service "…" in domain for …`) or 3 (`No such process`): launchd does not hold the job. */
  | 'not-loaded'
  /** 37 (`Operation already in progress`): launchd is still starting or tearing the job down. */
  | 'busy'
  /** 36 (`Operation now in progress`): launchd is in the middle of tearing the job down. */
  | 'in-progress'
  /** 112 (`Could not find domain for user gui: UID`) or 125 (`Domain does not support specified action`): no GUI login session. */
  | 'no-gui-session'
  /** 5 (`Input/output error`): bootstrap of a job launchd already holds, or of a plist it cannot use. */
  | 'io-error'
  /** 119 (`Service is disabled`): the job was disabled with `launchctl disable`. */
  | 'disabled'
  | 'other'

/** Sorts a failed launchctl answer into one of the refusals above. */
export function refusalOf(result: ExecResult): Refusal {
  const said = `${result.stderr}\n${result.stdout}`
  if (result.code === 112 || result.code === 125 || /could not find domain for user gui|domain does not support specified action/i.test(said)) return 'no-gui-session'
  if (result.code === 36 || /operation now in progress/i.test(said)) return 'in-progress'
  if (result.code === 113 || result.code === 3 || /could not find (specified )?service|no such process/i.test(said)) return 'not-loaded'
  if (result.code === 37 || /operation already in progress/i.test(said)) return 'busy'
  if (result.code === 5 || /input\/output error/i.test(said)) return 'io-error'
  if (result.code === 119 || /service is disabled/i.test(said)) return 'disabled'
  return 'other'
}

/**
 * launchctl's own words for a failure: its `… failed: N: text` line when it
 * printed one, else its first line that says something. Since macOS 13 a
 * failed request adds a second line, `Try re-running the command as root
 * for richer errors.`, and `print` starts with a bare `Bad request.`; neither
 * says what went wrong, so neither is shown.
 */
export function launchctlWords(result: ExecResult): string {
  const lines = (result.stderr.trim() || result.stdout.trim())
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && line !== 'Bad request.' && !/^try re-running the command as root/i.test(line))
  return lines.find((line) => /failed: \d+: /.test(line)) ?? lines[0] ?? `exit code ${result.code}`
}

/** A launchctl request that did not succeed, told as a failure the user can act on. */
export class LaunchctlError extends UserError {
  constructor(
    readonly refusal: Refusal,
    message: string,
    details: string[],
  ) {
    super(message, {details})
    this.name = 'LaunchctlError'
  }
}

/**
 * The message for a failed launchctl request: what launchctl said, what it
 * means for this job, and what to run next (`retry`, the service command the
 * user ran).
 */
export function explainRefusal(args: string[], result: ExecResult, job: LaunchdJob, retry: string): LaunchctlError {
  const refusal = refusalOf(result)
  const said = `launchctl ${args[0]} answered: ${launchctlWords(result)}`
  switch (refusal) {
    case 'not-loaded': {
      return new LaunchctlError(refusal, `launchd does not hold ${job.label}: it is not loaded.`, [
        said,
        `Load it again: ${NAMES.bin} service start`,
      ])
    }

    case 'busy':
    case 'in-progress': {
      const what = refusal === 'busy' ? 'operation already in progress' : 'operation now in progress'
      return new LaunchctlError(refusal, `launchd is still busy with ${job.label} (${what}).`, [said, `Wait a few seconds, then run it again: ${retry}`])
    }

    case 'no-gui-session': {
      return noSessionError(said, retry)
    }

    case 'io-error': {
      return new LaunchctlError(refusal, `launchd refused to load ${job.label} from ${job.plistPath} (Input/output error).`, [
        said,
        'launchd answers so for a job it already holds, one it is still unloading, and a plist it cannot use.',
        `See what launchd holds: ${NAMES.bin} service status`,
        `Check the file: plutil -lint '${job.plistPath}'; write it again with ${NAMES.bin} service install`,
      ])
    }

    case 'disabled': {
      return new LaunchctlError(refusal, `${job.label} is disabled in launchd.`, [said, `Enable and start it: ${NAMES.bin} service start`])
    }

    case 'other': {
      return new LaunchctlError(refusal, `launchctl ${args.join(' ')} failed for ${job.label} (exit ${result.code}).`, [
        said,
        `See what launchd holds: ${NAMES.bin} service status`,
        `Then try again: ${retry}`,
      ])
    }
  }
}

/**
 * The refusal for a user with no GUI login session: launchd keeps a
 * `gui/<uid>` domain, where LaunchAgents run, only while the user is logged
 * in at the Mac's screen. Over SSH, on a headless Mac, or under sudo there
 * is none: `print` answers 112 and `bootstrap` 125 (launchctl(1); the same
 * answers are reported in openclaw/openclaw#8642 and #13795, Mic92/sops-nix#966,
 * duh17/oppi#31). Homebrew's `brew services` (services/system.rb,
 * `domain_target`) loads into `user/<uid>` instead; this CLI does not, and
 * refuses as openclaw does (src/daemon/launchd-runtime.ts): a job in
 * `user/<uid>` runs outside the login session, needs
 * `LimitLoadToSessionType` Background, and at the next login at the screen
 * launchd loads the same plist into `gui/<uid>` as well, a second server on
 * the same port.
 */
export function noSessionError(said: string, retry: string): LaunchctlError {
  return new LaunchctlError('no-gui-session', 'This user has no macOS login session here (no launchd gui domain), so launchd cannot tell about or run the agents.', [
    said,
    'LaunchAgents run in the session of a user logged in at the Mac\'s screen; over SSH, on a headless Mac or under sudo there is none.',
    `Log in at the Mac's screen as this user (on a headless Mac, turn on automatic login), then run again: ${retry}`,
    'The installed agents start by themselves at that login.',
  ])
}

/** True when launchctl does not know a subcommand (macOS before 10.10 has no bootstrap, bootout or print). */
function unsupported(result: ExecResult): boolean {
  return result.code === 64 || /unrecogni[sz]ed subcommand|unknown subcommand/i.test(`${result.stdout}\n${result.stderr}`)
}

/** How long the driver waits on launchd, in ms; every one is bounded. */
export interface LaunchctlTiming {
  /** Any one launchctl call (launchctl has been seen to hang for more than 15 s). */
  callTimeoutMs: number
  /** How long a request is retried while launchd answers 37 or 36 (busy with the job). */
  busyMs: number
  /** How long to wait for launchd to let go of a booted-out job: it sends SIGTERM, then SIGKILL after ExitTimeOut. */
  unloadMs: number
  /** How long a bootstrap is retried while it answers 5 just after our own bootout (launchd still tearing the job down). */
  teardownMs: number
  /** How long a graceful restart waits for the job's process to exit after SIGTERM before it kills it. */
  stopMs: number
}

export const DEFAULT_TIMING: LaunchctlTiming = {
  callTimeoutMs: 15_000,
  busyMs: 10_000,
  unloadMs: (EXIT_TIMEOUT_SECONDS + 10) * 1000,
  teardownMs: 10_000,
  stopMs: (EXIT_TIMEOUT_SECONDS + 2) * 1000,
}

export interface LaunchctlOptions extends Partial<LaunchctlTiming> {
  /** The service command being run, named in messages that say to run it again. */
  retry: string
  clock?: Clock
}

/** What the driver needs from a service context. */
export type LaunchctlContext = Pick<DriverContext, 'exec' | 'env' | 'uid'>

/**
 * Runs launchctl through the context's runner, with the current subcommands
 * (bootstrap, bootout, print, kickstart) first; the first one launchctl does
 * not know switches this instance to the legacy ones (load -w, unload,
 * list). Requests that change a job throw a LaunchctlError, which says what
 * to do, for every answer other than success.
 */
export class Launchctl {
  private legacy = false
  private readonly timing: LaunchctlTiming
  private readonly clock: Clock
  /** Labels this instance booted out: a bootstrap of one that answers 5 is launchd still tearing it down. */
  private readonly bootedOut = new Set<string>()

  constructor(
    private readonly ctx: LaunchctlContext,
    private readonly options: LaunchctlOptions,
  ) {
    this.timing = {...DEFAULT_TIMING, ...Object.fromEntries(Object.entries(options).filter(([, value]) => typeof value === 'number'))}
    this.clock = options.clock ?? realClock
  }

  /**
   * One launchctl call, bounded by `callTimeoutMs`: a call that does not
   * answer in time fails with the call named (and the process is killed).
   */
  private async run(args: string[]): Promise<ExecResult> {
    const limit = this.timing.callTimeoutMs
    const stop = new AbortController()
    const expired = this.clock.sleep(limit, stop.signal).then(
      () => 'timeout' as const,
      () => 'cancelled' as const,
    )
    const result = await Promise.race([this.ctx.exec(LAUNCHCTL, args, {env: this.ctx.env, timeoutMs: limit + 1000}), expired])
    stop.abort()
    if (typeof result === 'string') {
      throw new LaunchctlError('other', `launchctl ${args.join(' ')} did not answer within ${limit / 1000} s.`, [
        'launchd may be busy or stuck; nothing more was asked of it.',
        `Wait a moment, then run it again: ${this.options.retry}`,
      ])
    }

    if (result.code === 127) throw new UserError(`launchctl could not be run: ${launchctlWords(result)}`, {details: ['Service management with launchd needs macOS.']})
    return result
  }

  private async current(args: string[]): Promise<ExecResult | undefined> {
    if (this.legacy) return undefined
    const result = await this.run(args)
    if (!unsupported(result)) return result
    this.legacy = true
    return undefined
  }

  /**
   * Runs a request that changes a job, again while launchd answers 37
   * (busy: a start or a teardown of the same job is still under way) or 36
   * (now in progress: Homebrew's `brew services stop` retries its bootout on
   * it, services/cli.rb), for at most `busyMs`; with `teardownOf`, also
   * while it answers 5 for a job this instance booted out (openclaw's
   * `retryPendingTeardown`: launchd refuses to load a label it is still
   * tearing down), for at most `teardownMs`.
   */
  private async change(args: string[], teardownOf?: LaunchdJob): Promise<ExecResult | undefined> {
    const start = this.clock.now()
    for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
      const result = await this.current(args)
      if (!result || result.code === 0) return result
      const refusal = refusalOf(result)
      const waited = this.clock.now() - start
      const busy = (refusal === 'busy' || refusal === 'in-progress') && waited < this.timing.busyMs
      const tearingDown = refusal === 'io-error' && teardownOf !== undefined && this.bootedOut.has(teardownOf.label) && waited < this.timing.teardownMs
      if (!busy && !tearingDown) return result
      await this.clock.sleep(delay)
    }
  }

  private fail(args: string[], result: ExecResult, job: LaunchdJob): never {
    throw explainRefusal(args, result, job, this.options.retry)
  }

  /** `gui/<uid>/<label>`: the job in the logged-in user's domain. */
  target(job: LaunchdJob): string {
    return `gui/${this.ctx.uid}/${job.label}`
  }

  /**
   * What launchd holds for a job; a job it does not know (113, or 3) is
   * `not-loaded`. Any other refusal is a LaunchctlError: launchd did not
   * tell, so nothing is concluded. No GUI session (112) is one of them.
   */
  async inspect(job: LaunchdJob): Promise<JobState> {
    const args = ['print', this.target(job)]
    const printed = await this.current(args)
    if (printed) {
      if (printed.code === 0) return {loaded: true, ...parseLaunchctlPrint(printed.stdout)}
      if (refusalOf(printed) === 'not-loaded') return {loaded: false, state: 'not-loaded'}
      this.fail(args, printed, job)
    }

    const listed = await this.run(['list', job.label])
    return listed.code === 0 ? {loaded: true, ...parseLaunchctlList(listed.stdout)} : {loaded: false, state: 'not-loaded'}
  }

  /**
   * Boots a job out and waits until launchd has let go of it: launchd tears
   * a job down after bootout returns, and a bootstrap of the same label
   * before that ends fails with `5: Input/output error`. A job launchd no
   * longer holds (113 or 3) counts as booted out.
   */
  async unload(job: LaunchdJob): Promise<void> {
    const args = ['bootout', this.target(job)]
    const result = await this.change(args)
    if (result && result.code !== 0 && refusalOf(result) !== 'not-loaded') this.fail(args, result, job)
    this.bootedOut.add(job.label)
    if (!result) {
      // Without its plist, an old launchctl can only remove the job by label.
      const legacy = existsSync(job.plistPath) ? ['unload', job.plistPath] : ['remove', job.label]
      const answer = await this.run(legacy)
      if (answer.code !== 0 && refusalOf(answer) !== 'not-loaded') this.fail(legacy, answer, job)
    }

    const timeoutMs = this.timing.unloadMs
    const start = this.clock.now()
    for (let delay = 50; (await this.inspect(job)).loaded; delay = Math.min(delay * 2, 500)) {
      if (this.clock.now() - start >= timeoutMs) {
        throw new LaunchctlError('busy', `launchd still holds ${job.label} ${timeoutMs / 1000} s after it was told to stop it.`, [
          `Wait a few seconds, then run it again: ${this.options.retry}`,
        ])
      }

      await this.clock.sleep(delay)
    }
  }

  /**
   * Loads a job from its plist: `enable` (which clears a `launchctl
   * disable` that would make bootstrap fail), then `bootstrap`; `load -w`
   * on a launchctl without them. With `tearingDown`, a 5 is retried as
   * after this instance's own bootout: the caller has just seen launchd not
   * hold the job, and launchd may still be tearing it down after a bootout
   * moments ago (`service stop && service start`), since print stops finding
   * a job before its label can be loaded again.
   */
  async load(job: LaunchdJob, options: {tearingDown?: boolean} = {}): Promise<void> {
    if (options.tearingDown) this.bootedOut.add(job.label)
    const enable = ['enable', this.target(job)]
    const enabled = await this.current(enable)
    if (enabled && enabled.code !== 0) this.fail(enable, enabled, job)
    const bootstrap = ['bootstrap', `gui/${this.ctx.uid}`, job.plistPath]
    const bootstrapped = enabled ? await this.change(bootstrap, job) : undefined
    if (bootstrapped) {
      if (bootstrapped.code !== 0) this.fail(bootstrap, bootstrapped, job)
      return
    }

    const legacy = ['load', '-w', job.plistPath]
    const loaded = await this.run(legacy)
    if (loaded.code !== 0) this.fail(legacy, loaded, job)
  }

  /**
   * Starts a loaded job now (`kickstart`); with `kill`, a running one is
   * killed and started again (`kickstart -k`, which sends SIGKILL:
   * LastExitStatus is 9 afterwards). launchctl before 10.10 has `start` and
   * `stop` instead.
   */
  async kickstart(job: LaunchdJob, options: {kill: boolean}): Promise<void> {
    const args = ['kickstart', ...(options.kill ? ['-k'] : []), this.target(job)]
    const result = await this.change(args)
    if (result) {
      if (result.code !== 0) this.fail(args, result, job)
      return
    }

    if (options.kill) await this.run(['stop', job.label])
    const started = await this.run(['start', job.label])
    if (started.code !== 0) this.fail(['start', job.label], started, job)
  }

  /**
   * Restarts a loaded job gracefully, as systemd's restart does:
   * 1. note its PID; `launchctl kill SIGTERM gui/<uid>/<label>` (launchd
   *    sends that signal and nothing after it);
   * 2. wait, at most `stopMs`, until the PID has changed or gone: the server
   *    answers the requests in flight and exits (ExitTimeOut bounds the
   *    same drain on bootout);
   * 3. `kickstart` without -k, since `KeepAlive {SuccessfulExit: false}`
   *    does not start a job again after a clean exit; a process that did not
   *    exit in time is killed with `kickstart -k` instead.
   * A job launchd does not hold is a LaunchctlError (`not-loaded`). Answers
   * how the old process ended: `stopped`, `killed`, or `none` (nothing ran).
   */
  async restart(job: LaunchdJob): Promise<'stopped' | 'killed' | 'none'> {
    const before = await this.inspect(job)
    if (!before.loaded) this.fail(['kill', 'SIGTERM', this.target(job)], {code: 113, stdout: '', stderr: `Could not find service "${job.label}"`}, job)
    if (before.pid === undefined) {
      await this.kickstart(job, {kill: false})
      return 'none'
    }

    const args = ['kill', 'SIGTERM', this.target(job)]
    const result = await this.change(args)
    if (!result) {
      await this.kickstart(job, {kill: true})
      return 'killed'
    }

    // 3 (`No such process`): it exited meanwhile, which is what was asked.
    if (result.code !== 0 && !(result.code === 3 && refusalOf(result) === 'not-loaded')) this.fail(args, result, job)
    const start = this.clock.now()
    for (let delay = 50; (await this.inspect(job)).pid === before.pid; delay = Math.min(delay * 2, 500)) {
      if (this.clock.now() - start >= this.timing.stopMs) {
        await this.kickstart(job, {kill: true})
        return 'killed'
      }

      await this.clock.sleep(delay)
    }

    await this.kickstart(job, {kill: false})
    return 'stopped'
  }
}
