import {existsSync, mkdirSync} from 'node:fs'
import {basename} from 'node:path'

import {UserError} from '../../errors.js'
import {commandText, removeFile, writeFilesAtomically} from '../../files.js'
import {NAMES, pathsFor, serverUrl} from '../../paths.js'
import {plannedWriteLines} from '../render.js'
import {makeUnitSpec} from '../spec.js'
import type {Backend, InstallOptions, InstallPlan, LogsOptions, OperateOptions, ServiceContext, ServiceResult, UnitSpec} from '../types.js'
import {type ServerTarget, verifyServing} from '../verify.js'
import {type Clock, exitedWithConfigError, type JobState, Launchctl, LaunchctlError, type LaunchctlTiming, serverWroteSince, spawnFailed} from './launchctl.js'
import {launchdLogFiles, readLogs, recentLines} from './logs.js'
import {buildPlist, installedTarget, type LaunchdJob, launchdJobs, readInstalledPlist, renderServerPlist, renderWatchdogPlist} from './plist.js'
import {launchdStatus, portOwnerCommand, spawnFailureText, type SpawnFacts} from './status.js'

const LAUNCHCTL = 'launchctl'
const PLATFORM = 'macos'

/** How many of the server's last log lines a diagnosis shows. */
const DIAGNOSIS_LINES = 10

/**
 * launchd's state for a job as the diagnosis tells it; `facts` tell
 * launchd's own exit code 78 (it could not start the program) from the
 * server's (a configuration error).
 */
export function describeJobState(state: JobState, facts: SpawnFacts): string {
  if (!state.loaded) return 'not loaded in launchd'
  if (spawnFailed(state, facts.serverWrote)) return `${state.state}: ${spawnFailureText(facts)}`
  const pid = state.pid ? `, PID ${state.pid}` : ''
  const exited = state.pid === undefined && state.lastExitCode !== undefined
  const config = exitedWithConfigError(state, facts.serverWrote) ? ` (a configuration error: ${NAMES.bin} service status names the line to fix)` : ''
  return `${state.state}${pid}${exited ? `, last exit code ${state.lastExitCode}${config}` : ''}`
}

/** How long the launchd backend waits on launchd, and the clock it waits with (tests pass their own). */
export type LaunchdBackendOptions = Partial<LaunchctlTiming> & {clock?: Clock}

function failed(message: string, details: string[] = []): ServiceResult {
  return {success: false, platform: PLATFORM, message, details}
}

/** What start, stop, restart and logs answer with nothing installed. */
function notInstalled(): ServiceResult {
  return failed(`${NAMES.serviceName} service is not installed.`, [`Install it: ${NAMES.bin} service install`])
}

/**
 * Refuses to install or start the agents as root (uid 0, as under sudo):
 * they would be loaded into root's own session, `gui/0`, not the user's,
 * and run the server as root.
 */
function refusedAsRoot(uid: number, command: string): ServiceResult | undefined {
  if (uid !== 0) return undefined
  return failed(`Refusing to ${command} the launchd agents as root: they would run in root's session (gui/0), not in yours.`, [
    `Run it as yourself, without sudo: ${NAMES.bin} service ${command}`,
  ])
}

/** Runs a service command, turning a UserError (every launchctl refusal is one) into a failed result. */
async function guarded(work: () => Promise<ServiceResult>): Promise<ServiceResult> {
  try {
    return await work()
  } catch (error) {
    if (error instanceof UserError) return failed(error.message, error.details)
    throw error
  }
}

/**
 * The launchd backend: per-user agents in `~/Library/LaunchAgents`, loaded
 * into the `gui/<uid>` domain. Every launchctl call goes through `ctx.exec`.
 */
export function createLaunchdBackend(ctx: ServiceContext, options: LaunchdBackendOptions = {}): Backend {
  const [serverJob, watchdogJob] = launchdJobs(ctx.home)
  const paths = pathsFor(ctx.home, ctx.env)
  const launchctlFor = (command: string) => new Launchctl(ctx, {...options, retry: `${NAMES.bin} service ${command}`})

  /**
   * Creates the folder the plists send output to. launchd does not create
   * it, and cannot start a job whose log file it cannot open; Homebrew's
   * `brew services` creates its folders before every load too
   * (services/cli.rb, `service_load`).
   */
  function ensureLogFolder(): void {
    try {
      mkdirSync(paths.serverDir, {recursive: true})
    } catch (error) {
      throw new UserError(`Cannot create the log folder ${paths.serverDir} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); launchd cannot start the service without it.`, {
        details: ['Make sure ~/.amplifier is a writable folder of yours, then run the command again.'],
      })
    }
  }

  /** What tells launchd's own exit code 78 from the server's: the server's line in its log since `sinceMs`, and what to check. */
  function spawnFacts(sinceMs: number): SpawnFacts {
    const program = readInstalledPlist(serverJob.plistPath)?.program
    return {serverWrote: serverWroteSince(paths.serverStderrLog, sinceMs), logDir: paths.serverDir, ...(program ? {program} : {})}
  }

  function plan(spec: UnitSpec, options: {watchdog: boolean}): InstallPlan {
    const files = [{path: serverJob.plistPath, content: buildPlist(renderServerPlist(spec))}]
    if (options.watchdog) files.push({path: watchdogJob.plistPath, content: buildPlist(renderWatchdogPlist(spec))})
    const jobs = options.watchdog ? [serverJob, watchdogJob] : [serverJob]
    return {
      files,
      commands: [
        // Booted out only when loaded; the watchdog first, so it cannot restart a server that is being replaced.
        ...[...jobs].reverse().map((job) => [LAUNCHCTL, 'bootout', `gui/${ctx.uid}/${job.label}`]),
        ...jobs.flatMap((job) => [
          [LAUNCHCTL, 'enable', `gui/${ctx.uid}/${job.label}`],
          [LAUNCHCTL, 'bootstrap', `gui/${ctx.uid}`, job.plistPath],
        ]),
      ],
    }
  }

  /** The jobs launchd holds, in the order they are booted out: the watchdog first, so it cannot restart a server being stopped. */
  async function heldJobs(launchctl: Launchctl): Promise<LaunchdJob[]> {
    const held: LaunchdJob[] = []
    for (const job of [watchdogJob, serverJob]) if ((await launchctl.inspect(job)).loaded) held.push(job)
    return held
  }

  function dryRun(planned: InstallPlan, watchdog: boolean): ServiceResult {
    const details = ['Nothing was changed. An install would:']
    if (!watchdog && existsSync(watchdogJob.plistPath)) {
      details.push(`run: ${commandText([LAUNCHCTL, 'bootout', `gui/${ctx.uid}/${watchdogJob.label}`])} (when loaded)`, `remove: ${watchdogJob.plistPath}`)
    }

    for (const file of planned.files) details.push(...plannedWriteLines(file))

    for (const command of planned.commands) details.push(`run: ${commandText(command)}${command[1] === 'bootout' ? ' (when loaded)' : ''}`)
    return {success: true, platform: PLATFORM, message: `Dry run: ${NAMES.serviceName} service install`, details}
  }

  /**
   * Ends install, start and restart as `verifyServing` says: the server
   * must answer from the PID launchd reports for the server job; the wait
   * ends early once the server has exited with a configuration error, or
   * launchd could not start the program at all (no later start can
   * succeed); the diagnosis tells which, from the server's own line in its
   * log since `startedWall`, the job's state and the server's last log
   * lines. The plists stay either way.
   */
  async function verified(
    command: 'install' | 'start' | 'restart',
    launchctl: Launchctl,
    target: ServerTarget,
    timing: {startedAt: number; waitSeconds: number; previousPid?: number},
    done: {message: string; details: string[]},
    startedWall: number,
  ): Promise<ServiceResult> {
    const failedToStart = (state: JobState, facts: SpawnFacts) => spawnFailed(state, facts.serverWrote) || exitedWithConfigError(state, facts.serverWrote)
    return verifyServing(
      {success: true, platform: PLATFORM, ...done},
      {
        platform: PLATFORM,
        command,
        target,
        timing,
        supervisor: {
          mainPid: async () => (await launchctl.inspect(serverJob)).pid,
          gaveUp: async () => failedToStart(await launchctl.inspect(serverJob), spawnFacts(startedWall)),
        },
        async diagnose() {
          const state = await launchctl.inspect(serverJob)
          const facts = spawnFacts(startedWall)
          return {
            supervisorState: describeJobState(state, facts),
            logTail: recentLines([paths.serverStdoutLog, paths.serverStderrLog], DIAGNOSIS_LINES).map((line) => line.text),
            configError: exitedWithConfigError(state, facts.serverWrote),
          }
        },
        portOwnerCommand,
      },
    )
  }

  /**
   * Install steps:
   * 1. validate host and port, resolve the binary, render the plists (any
   *    failure here stops before anything is written or run);
   * 2. for a dry run, describe the plan and stop;
   * 3. ask launchctl which jobs are loaded (this also proves it can be run);
   * 4. write the plists atomically, mode 0644, and create the log folder;
   * 5. boot out the loaded jobs, watchdog first; with `--no-watchdog`, a
   *    watchdog left from an earlier install is booted out and its plist removed;
   * 6. enable and bootstrap the server, then the watchdog (`load -w` on a
   *    launchctl without bootstrap);
   * 7. wait for the new server's health (unless `--wait 0`).
   */
  async function install(options: InstallOptions): Promise<ServiceResult> {
    const startedAt = performance.now()
    let spec: UnitSpec
    let planned: InstallPlan
    try {
      spec = makeUnitSpec(ctx, options)
      planned = plan(spec, {watchdog: options.watchdog})
    } catch (error) {
      if (error instanceof UserError) return failed(error.message, error.details)
      throw error
    }

    if (options.dryRun) return dryRun(planned, options.watchdog)
    const asRoot = refusedAsRoot(ctx.uid, 'install')
    if (asRoot) return asRoot

    const startedWall = Date.now()
    const launchctl = launchctlFor('install')
    return guarded(async () => {
      const held = await heldJobs(launchctl)

      try {
        mkdirSync(paths.serverDir, {recursive: true})
        writeFilesAtomically(planned.files)
      } catch (error) {
        const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message
        return failed(`Cannot write the launchd agents to ${paths.launchAgentsDir} (${reason}); nothing was loaded.`, [
          'Make sure that folder and ~/.amplifier/server are writable directories, then run install again.',
        ])
      }

      for (const job of held) await launchctl.unload(job)

      const details = planned.files.map((file) => `Wrote ${file.path}`)
      if (!options.watchdog && existsSync(watchdogJob.plistPath)) {
        removeFile(watchdogJob.plistPath)
        details.push(`Removed ${watchdogJob.plistPath}`)
      }

      for (const job of options.watchdog ? [serverJob, watchdogJob] : [serverJob]) {
        try {
          ensureLogFolder()
          await launchctl.load(job)
        } catch (error) {
          if (error instanceof LaunchctlError) error.details.push(`Remove the half-finished install: ${NAMES.bin} service uninstall`)
          throw error
        }
      }

      const names = planned.files.map((file) => basename(file.path)).join(' and ')
      return verified(
        'install',
        launchctl,
        spec,
        {startedAt, waitSeconds: options.waitSeconds},
        {
          message: `Installed ${names} (launchd user ${planned.files.length > 1 ? 'agents' : 'agent'}).`,
          details: [...details, `Runs: ${spec.bin}`, `Serves: ${serverUrl(spec.host, spec.port)}`, `Logs: ${NAMES.bin} service logs`, `Status: ${NAMES.bin} service status`],
        },
        startedWall,
      )
    })
  }

  /**
   * Uninstall steps: boot out whichever jobs are loaded (watchdog first, so
   * it cannot restart the server), then remove the plists. Data under
   * `~/.amplifier` is left alone. Nothing installed is a success.
   */
  async function uninstall(): Promise<ServiceResult> {
    const launchctl = launchctlFor('uninstall')
    return guarded(async () => {
      const loaded = await heldJobs(launchctl)
      const files = [watchdogJob, serverJob].filter((job) => existsSync(job.plistPath))
      if (loaded.length === 0 && files.length === 0) {
        return {success: true, platform: PLATFORM, message: `${NAMES.serviceName} service is not installed; nothing to do.`, details: []}
      }

      const details: string[] = []
      for (const job of loaded) {
        try {
          await launchctl.unload(job)
        } catch (error) {
          if (error instanceof LaunchctlError) error.details.push('Nothing was removed.')
          throw error
        }

        details.push(`Stopped ${job.label}`)
      }

      for (const job of files) {
        removeFile(job.plistPath)
        details.push(`Removed ${job.plistPath}`)
      }

      details.push(`Data in ${paths.amplifierHome} was left in place.`)
      return {success: true, platform: PLATFORM, message: `Uninstalled ${NAMES.serviceName} service.`, details}
    })
  }

  /** The jobs start and restart bring up: the server, and the watchdog when its plist is installed. */
  function installedJobs(): LaunchdJob[] {
    return existsSync(watchdogJob.plistPath) ? [serverJob, watchdogJob] : [serverJob]
  }

  /**
   * Brings one job up: nothing for a running job, `kickstart` for one
   * launchd holds but does not run, `enable` and `bootstrap` for one it
   * does not hold. Answers a line for the result's details.
   */
  async function bringUp(launchctl: Launchctl, job: LaunchdJob): Promise<string> {
    const state = await launchctl.inspect(job)
    if (state.loaded && state.pid) return `${job.label} was already running (PID ${state.pid}).`
    ensureLogFolder()
    if (state.loaded) {
      await launchctl.kickstart(job, {kill: false})
      return `Started ${job.label} (kickstart).`
    }

    try {
      await launchctl.load(job, {tearingDown: true})
    } catch (error) {
      // launchd took the job between print and bootstrap (5: it already holds it): start what it holds.
      if (!(error instanceof LaunchctlError && error.refusal === 'io-error' && (await launchctl.inspect(job)).loaded)) throw error
      await launchctl.kickstart(job, {kill: false})
      return `Started ${job.label} (kickstart).`
    }

    return `Loaded ${job.label} (enable, bootstrap).`
  }

  /**
   * Restarts one job gracefully (`Launchctl.restart`: SIGTERM, a bounded
   * wait, kickstart) when launchd holds it, loading it when it no longer
   * does (113 or 3).
   */
  async function replace(launchctl: Launchctl, job: LaunchdJob): Promise<string> {
    try {
      ensureLogFolder()
      const ended = await launchctl.restart(job)
      if (ended === 'killed') return `Restarted ${job.label} (it did not exit after SIGTERM, so it was killed: kickstart -k).`
      return ended === 'stopped' ? `Restarted ${job.label} (SIGTERM, then kickstart).` : `Started ${job.label} (kickstart).`
    } catch (error) {
      if (!(error instanceof LaunchctlError && error.refusal === 'not-loaded')) throw error
      return bringUp(launchctl, job)
    }
  }

  /**
   * Start steps: the server, then the watchdog, each brought up as
   * `bringUp` says; then the wait for health (unless `--wait 0`).
   */
  async function start(options: OperateOptions): Promise<ServiceResult> {
    const startedAt = performance.now()
    const installed = readInstalledPlist(serverJob.plistPath)
    if (!installed) return notInstalled()
    const asRoot = refusedAsRoot(ctx.uid, 'start')
    if (asRoot) return asRoot
    const startedWall = Date.now()
    const launchctl = launchctlFor('start')
    return guarded(async () => {
      const details: string[] = []
      for (const job of installedJobs()) details.push(await bringUp(launchctl, job))
      const already = details.every((line) => line.includes('already running'))
      const message = already ? `${NAMES.serviceName} service is already running.` : `Started ${NAMES.serviceName} service.`
      return verified('start', launchctl, installedTarget(installed), {startedAt, waitSeconds: options.waitSeconds}, {message, details}, startedWall)
    })
  }

  /**
   * Restart steps: note the server's PID, restart the server gracefully
   * (SIGTERM, a bounded wait for it to drain and exit, kickstart), then the
   * watchdog the same way (a job launchd does not hold is loaded instead, so
   * a stopped service is started); then wait until health answers from a
   * PID other than the old one (unless `--wait 0`).
   */
  async function restart(options: OperateOptions): Promise<ServiceResult> {
    const startedAt = performance.now()
    const installed = readInstalledPlist(serverJob.plistPath)
    if (!installed) return notInstalled()
    const asRoot = refusedAsRoot(ctx.uid, 'restart')
    if (asRoot) return asRoot
    const startedWall = Date.now()
    const launchctl = launchctlFor('restart')
    return guarded(async () => {
      const before = await launchctl.inspect(serverJob)
      const details: string[] = []
      for (const job of installedJobs()) details.push(before.loaded ? await replace(launchctl, job) : await bringUp(launchctl, job))
      return verified(
        'restart',
        launchctl,
        installedTarget(installed),
        {startedAt, waitSeconds: options.waitSeconds, ...(before.pid ? {previousPid: before.pid} : {})},
        {message: before.loaded ? `Restarted ${NAMES.serviceName} service.` : `Started ${NAMES.serviceName} service (it was stopped).`, details},
        startedWall,
      )
    })
  }

  /**
   * Stop steps: boot out whichever jobs launchd holds, the watchdog first
   * (so it cannot kickstart the server meanwhile), waiting until launchd
   * has let go of each. The plists stay, so launchd loads them again at the
   * next login; a service that is already stopped succeeds.
   */
  async function stop(): Promise<ServiceResult> {
    const launchctl = launchctlFor('stop')
    return guarded(async () => {
      const loaded = await heldJobs(launchctl)
      if (loaded.length === 0 && ![watchdogJob, serverJob].some((job) => existsSync(job.plistPath))) return notInstalled()
      const startHint = `Start it: ${NAMES.bin} service start`
      if (loaded.length === 0) return {success: true, platform: PLATFORM, message: `${NAMES.serviceName} service is already stopped.`, details: [startHint]}
      const details: string[] = []
      for (const job of loaded) {
        await launchctl.unload(job)
        details.push(`Stopped ${job.label} (bootout).`)
      }

      details.push(`The plists stay in ${paths.launchAgentsDir}: launchd starts the service again at the next login.`, startHint)
      return {success: true, platform: PLATFORM, message: `Stopped ${NAMES.serviceName} service.`, details}
    })
  }

  /** Prints the files the plists name and watchdog.log, as `readLogs` merges and follows them. */
  async function logs(options: LogsOptions): Promise<ServiceResult> {
    if (!existsSync(serverJob.plistPath) && !existsSync(watchdogJob.plistPath)) return notInstalled()
    const files = launchdLogFiles(paths)
    const count = await readLogs(files, options)
    const names = files.map((log) => basename(log.file))
    return {
      success: true,
      platform: PLATFORM,
      message: count === 0 ? `No log lines yet in ${paths.serverDir}.` : `${count} ${count === 1 ? 'line' : 'lines'} from ${paths.serverDir}.`,
      details: [`Files: ${names.slice(0, -1).join(', ')} and ${names.at(-1)}`],
    }
  }

  return {
    platform: PLATFORM,
    plan,
    install,
    uninstall,
    status: () => launchdStatus(ctx, launchctlFor('status'), [serverJob, watchdogJob]),
    start,
    stop,
    restart,
    logs,
  }
}
