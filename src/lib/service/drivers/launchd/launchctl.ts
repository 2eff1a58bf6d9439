import {existsSync} from 'node:fs'
import {setTimeout as sleep} from 'node:timers/promises'

import {EXIT_CONFIG, UserError} from '../../../errors.js'
import {NAMES} from '../../../paths.js'
import type {DriverContext} from '../../driver.js'
import type {ExecResult} from '../../types.js'
import type {LaunchdJob} from './plist.js'

const LAUNCHCTL = 'launchctl'

/** What launchctl reports for one job. */
export interface JobState {
  loaded: boolean
  /** launchd's word: running, not running, spawn scheduled…; `not-loaded` when launchd does not know the job. */
  state: string
  pid?: number
  /** The job's last exit code, once it has exited. */
  lastExitCode?: number
}

/**
 * True for a job launchd holds but does not run whose last exit code is
 * EXIT_CONFIG: a configuration that can never work. launchd has no setting
 * that stops restarting it, so it starts it again every ThrottleInterval
 * and each start fails the same way.
 */
export function exitedWithConfigError(state: JobState): boolean {
  return state.loaded && state.pid === undefined && state.lastExitCode === EXIT_CONFIG
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
  return {
    state: props.get('state') ?? 'unknown',
    ...(pid && /^\d+$/.test(pid) ? {pid: Number(pid)} : {}),
    ...(exit ? {lastExitCode: Number(exit[0])} : {}),
  }
}

/** Reads `launchctl list <label>`, whose `"PID" = N;` line is there only while the job runs. */
export function parseLaunchctlList(text: string): Omit<JobState, 'loaded'> {
  const match = /"PID"\s*=\s*(\d+);/.exec(text)
  const status = /"LastExitStatus"\s*=\s*(\d+);/.exec(text)
  // LastExitStatus is a wait status: the exit code sits in its second byte.
  const exited = status && Number(status[1]) > 0 ? {lastExitCode: Number(status[1]) >> 8} : {}
  return match ? {state: 'running', pid: Number(match[1])} : {state: 'not running', ...exited}
}

/** How launchctl refused a request, from its exit code and words. */
export type Refusal =
  /** 113 (`Could not find service "…" in domain for …`) or 3 (`No such process`): launchd does not hold the job. */
  | 'not-loaded'
  /** 37 (`Operation already in progress`): launchd is still starting or tearing the job down. */
  | 'busy'
  /** 5 (`Input/output error`): bootstrap of a job launchd already holds, or of a plist it cannot use. */
  | 'io-error'
  /** 119 (`Service is disabled`): the job was disabled with `launchctl disable`. */
  | 'disabled'
  | 'other'

/** Sorts a failed launchctl answer into one of the refusals above. */
export function refusalOf(result: ExecResult): Refusal {
  const said = `${result.stderr}\n${result.stdout}`
  if (result.code === 113 || result.code === 3 || /could not find (specified )?service|no such process/i.test(said)) return 'not-loaded'
  if (result.code === 37 || /operation already in progress/i.test(said)) return 'busy'
  if (result.code === 5 || /input\/output error/i.test(said)) return 'io-error'
  if (result.code === 119 || /service is disabled/i.test(said)) return 'disabled'
  return 'other'
}

/** launchctl's own words: the last line it printed (the first is often a bare `Bad request.`). */
export function launchctlWords(result: ExecResult): string {
  const lines = (result.stderr.trim() || result.stdout.trim()).split('\n').filter((line) => line.trim() !== '')
  return lines.at(-1)?.trim() ?? `exit code ${result.code}`
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

    case 'busy': {
      return new LaunchctlError(refusal, `launchd is still busy with ${job.label} (operation already in progress).`, [
        said,
        `Wait a few seconds, then run it again: ${retry}`,
      ])
    }

    case 'io-error': {
      return new LaunchctlError(refusal, `launchd refused to load ${job.plistPath} (Input/output error).`, [
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
      return new LaunchctlError(refusal, `launchctl ${args.join(' ')} failed (exit ${result.code}).`, [
        said,
        `See what launchd holds: ${NAMES.bin} service status`,
        `Then try again: ${retry}`,
      ])
    }
  }
}

/** True when launchctl does not know a subcommand (macOS before 10.10 has no bootstrap, bootout or print). */
function unsupported(result: ExecResult): boolean {
  return result.code === 64 || /unrecogni[sz]ed subcommand|unknown subcommand/i.test(`${result.stdout}\n${result.stderr}`)
}

export interface LaunchctlOptions {
  /** The service command being run, named in messages that say to run it again. */
  retry: string
  /** How long a job may stay `busy` (37) before the request fails, in ms. */
  busyMs?: number
  /** How long to wait for launchd to let go of a booted-out job, in ms. */
  unloadMs?: number
}

/**
 * Runs launchctl through the context's runner, with the current subcommands
 * (bootstrap, bootout, print, kickstart) first; the first one launchctl does
 * not know switches this instance to the legacy ones (load -w, unload,
 * list). Requests that change a job throw a LaunchctlError, which says what
 * to do, for every answer other than success.
 */
export class Launchctl {
  private legacy = false

  constructor(
    private readonly ctx: Pick<DriverContext, 'exec' | 'env' | 'uid'>,
    private readonly options: LaunchctlOptions,
  ) {}

  private async run(args: string[]): Promise<ExecResult> {
    const result = await this.ctx.exec(LAUNCHCTL, args, {env: this.ctx.env})
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
   * (busy: a start or a teardown of the same job is still under way), for
   * at most `busyMs`.
   */
  private async change(args: string[]): Promise<ExecResult | undefined> {
    const deadline = Date.now() + (this.options.busyMs ?? 5000)
    for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
      const result = await this.current(args)
      if (!result || result.code === 0 || refusalOf(result) !== 'busy' || Date.now() >= deadline) return result
      await sleep(delay)
    }
  }

  private fail(args: string[], result: ExecResult, job: LaunchdJob): never {
    throw explainRefusal(args, result, job, this.options.retry)
  }

  /** `gui/<uid>/<label>`: the job in the logged-in user's domain. */
  target(job: LaunchdJob): string {
    return `gui/${this.ctx.uid}/${job.label}`
  }

  /** What launchd holds for a job; a job it does not know is `not-loaded`, never an error. */
  async inspect(job: LaunchdJob): Promise<JobState> {
    const printed = await this.current(['print', this.target(job)])
    if (printed) return printed.code === 0 ? {loaded: true, ...parseLaunchctlPrint(printed.stdout)} : {loaded: false, state: 'not-loaded'}
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
    if (!result) {
      // Without its plist, an old launchctl can only remove the job by label.
      const legacy = existsSync(job.plistPath) ? ['unload', job.plistPath] : ['remove', job.label]
      const answer = await this.run(legacy)
      if (answer.code !== 0 && refusalOf(answer) !== 'not-loaded') this.fail(legacy, answer, job)
    }

    const timeoutMs = this.options.unloadMs ?? 10_000
    const deadline = Date.now() + timeoutMs
    for (let delay = 50; (await this.inspect(job)).loaded; delay = Math.min(delay * 2, 500)) {
      if (Date.now() >= deadline) {
        throw new LaunchctlError('busy', `launchd still holds ${job.label} ${timeoutMs / 1000} s after it was told to stop it.`, [
          `Wait a few seconds, then run it again: ${this.options.retry}`,
        ])
      }

      await sleep(delay)
    }
  }

  /**
   * Loads a job from its plist: `enable` (which clears a `launchctl
   * disable` that would make bootstrap fail), then `bootstrap`; `load -w`
   * on a launchctl without them.
   */
  async load(job: LaunchdJob): Promise<void> {
    const enable = ['enable', this.target(job)]
    const enabled = await this.current(enable)
    if (enabled && enabled.code !== 0) this.fail(enable, enabled, job)
    const bootstrap = ['bootstrap', `gui/${this.ctx.uid}`, job.plistPath]
    const bootstrapped = enabled ? await this.change(bootstrap) : undefined
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
   * killed and started again (`kickstart -k`). launchctl before 10.10 has
   * `start` and `stop` instead.
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
}
