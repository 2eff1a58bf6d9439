import {existsSync, mkdirSync} from 'node:fs'
import {basename} from 'node:path'

import {UserError} from '../../../errors.js'
import {removeExisting, writeFilesAtomically} from '../../../files.js'
import {NAMES, pathsFor} from '../../../paths.js'
import type {Definition, Driver, DriverContext, Inspection, JobState, PlannedCommand, Role} from '../../driver.js'
import {type Clock, exitedWithConfigError, lastStartBound, Launchctl, LaunchctlError, type LaunchctlTiming, neverRan, type JobState as PrintedJob, serverWroteSince, spawnFailed} from './launchctl.js'
import {launchdLogFiles, readLogs, recentLines} from './logs.js'
import {buildPlist, findPlistMistake, installedTarget, type LaunchdJob, launchdJobs, parsePlistText, readInstalledPlist, renderServerPlist, renderWatchdogPlist, THROTTLE_SECONDS} from './plist.js'

const LAUNCHCTL = 'launchctl'

/** What tells launchd's own exit code 78 from the job's, and what to check when launchd could not start the program. */
export interface SpawnFacts {
  /** The job wrote a line to its stderr log since its last start: only the program writes there, never launchd. */
  serverWrote: boolean
  /** The folder the plists send output to. */
  logDir: string
  /** The program the job's plist runs. */
  program?: string
}

/** What launchd's own exit code 78 means, and what to check. */
export function spawnFailureText(facts: SpawnFacts): string {
  return (
    `launchd could not start the program (its own exit code 78, EX_CONFIG; the program never ran, and launchd tries again every ${THROTTLE_SECONDS} s). ` +
    `Check that the log folder ${facts.logDir} exists and is writable by you, and that ${facts.program ?? 'the program the plist names'} exists and can be run`
  )
}

/**
 * launchd's state for a job as a diagnosis tells it; `facts` tell launchd's
 * own exit code 78 (it could not start the program) from the job's (a
 * configuration error).
 */
export function describeJobState(state: PrintedJob, facts: SpawnFacts): string {
  if (!state.loaded) return 'not loaded in launchd'
  if (spawnFailed(state, facts.serverWrote)) return `${state.state}: ${spawnFailureText(facts)}`
  const pid = state.pid ? `, PID ${state.pid}` : ''
  const exited = state.pid === undefined && state.lastExitCode !== undefined
  const config = exitedWithConfigError(state, facts.serverWrote) ? ` (a configuration error: ${NAMES.bin} service status names the line to fix)` : ''
  return `${state.state}${pid}${exited ? `, last exit code ${state.lastExitCode}${config}` : ''}`
}

/**
 * The warning for a job launchd holds but has never started. On macOS 13
 * and later a new agent in ~/Library/LaunchAgents is announced as
 * "Background Items Added", and the user can turn it off in System Settings
 * → General → Login Items; launchd then keeps the job loaded and never runs it.
 */
function neverRanWarning(label: string): string[] {
  return [
    `launchd holds ${label} but has never started it.`,
    'macOS does so for a background item turned off in System Settings → General → Login Items ("Allow in the Background").',
    `Turn it on there, then run: ${NAMES.bin} service restart`,
  ]
}

/** One job as `launchctl print` reports it, in the driver interface's terms. */
export function jobState(state: PrintedJob, job: LaunchdJob, facts: SpawnFacts): JobState {
  const spawn = spawnFailed(state, facts.serverWrote)
  const configError = exitedWithConfigError(state, facts.serverWrote)
  return {
    held: state.loaded ? 'loaded' : 'not-loaded',
    state: state.state,
    summary: state.state,
    detail: describeJobState(state, facts),
    // A held job that exited with a failure is started again by launchd (KeepAlive), so it counts as running.
    running: state.loaded && (state.pid !== undefined || state.state !== 'not running' || configError || spawn),
    ...(state.pid === undefined ? {} : {pid: state.pid}),
    gaveUp: configError || spawn,
    configError,
    ...(spawn ? {spawnFailed: spawnFailureText(facts)} : {}),
    ...(neverRan(state) ? {warning: neverRanWarning(job.label)} : {}),
    orphaned: state.loaded && !existsSync(job.plistPath),
    ...(configError ? {failure: `exit code ${state.lastExitCode}`} : {}),
  }
}

/**
 * True when launchd started this process as one of our jobs: launchd sets
 * `XPC_SERVICE_NAME` to the job's label, and our plists set
 * `LAUNCHD_JOB_NAME` to the same label. Both must agree and name one of our
 * two jobs: a Terminal session has `XPC_SERVICE_NAME=0` or an
 * `application.…` name, and the environment of some other job (its shell,
 * its children) names that job, which launchd would not restart for us.
 */
export function startedBy(env: NodeJS.ProcessEnv, _pid: number): boolean {
  const ours: (string | undefined)[] = [NAMES.launchdLabel, NAMES.launchdWatchdogLabel]
  return ours.includes(env.LAUNCHD_JOB_NAME) && env.XPC_SERVICE_NAME === env.LAUNCHD_JOB_NAME
}

/** How long the launchd driver waits on launchd, and the clock it waits with (tests pass their own). */
export type LaunchdDriverOptions = Partial<LaunchctlTiming> & {clock?: Clock}

/**
 * The launchd driver: per-user agents in `~/Library/LaunchAgents`, loaded
 * into the `gui/<uid>` domain; their output goes to files under
 * `~/.amplifier/server`. Every launchctl call goes through `ctx.exec`, each
 * bounded by a time-out.
 */
export function createDriver(ctx: DriverContext, options: LaunchdDriverOptions = {}): Driver {
  const [serverJob, watchdogJob] = launchdJobs(ctx.home)
  const job: Record<Role, LaunchdJob> = {server: serverJob, watchdog: watchdogJob}
  const paths = pathsFor(ctx.home, ctx.env)
  const launchctl = new Launchctl(ctx, {...options, retry: `${NAMES.bin} ${ctx.command ?? 'service'}`})
  const stderrLog: Record<Role, string> = {server: paths.serverStderrLog, watchdog: paths.watchdogStderrLog}
  /** When this driver last loaded or started the jobs (wall-clock ms): a line of a job's own since then tells its exit 78 from launchd's. */
  let startedWall: number | undefined

  /** Notes that the jobs are being (re)started now. */
  const starting = () => {
    startedWall = Date.now()
  }

  /**
   * What tells launchd's own exit code 78 from the job's: a line the job
   * wrote to its stderr log since it was last started, by this driver, or
   * else within the last two ThrottleIntervals (launchd starts a failing job
   * again once per interval).
   */
  function spawnFacts(role: Role): SpawnFacts {
    const program = readInstalledPlist(job[role].plistPath)?.program
    const since = startedWall ?? lastStartBound(Date.now())
    return {serverWrote: serverWroteSince(stderrLog[role], since), logDir: paths.serverDir, ...(program ? {program} : {})}
  }

  /**
   * Creates the folder the plists send output to, before every load and
   * start. launchd does not create it, and cannot start a job whose log file
   * it cannot open; Homebrew's `brew services` creates its folders before
   * every load too (services/cli.rb, `service_load`).
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
  const domain = `gui/${ctx.uid}`
  const bootout = (role: Role): PlannedCommand => ({argv: [LAUNCHCTL, 'bootout', `${domain}/${job[role].label}`], when: 'when loaded'})
  const outputFiles: Record<Role, string[]> = {
    server: [paths.serverStdoutLog, paths.serverStderrLog],
    watchdog: [paths.watchdogStdoutLog, paths.watchdogStderrLog, paths.watchdogLog],
  }

  /** What launchd holds for a job right now; undefined when launchctl cannot be run. */
  async function printed(role: Role): Promise<PrintedJob | undefined> {
    try {
      return await launchctl.inspect(job[role])
    } catch (error) {
      if (error instanceof UserError) return undefined
      throw error
    }
  }

  /**
   * Brings one job up: nothing for a running job, `kickstart` for one
   * launchd holds but does not run, `enable` and `bootstrap` for one it
   * does not hold.
   */
  async function bringUp(role: Role): Promise<void> {
    const state = await launchctl.inspect(job[role])
    if (state.loaded && state.pid) return
    ensureLogFolder()
    if (state.loaded) {
      await launchctl.kickstart(job[role], {kill: false})
      return
    }

    try {
      // launchd may still be tearing down a job booted out moments ago (`service stop && service start`): a 5 is retried.
      await launchctl.load(job[role], {tearingDown: true})
    } catch (error) {
      // launchd took the job between print and bootstrap (5: it already holds it): start what it holds.
      if (!(error instanceof LaunchctlError && error.refusal === 'io-error' && (await launchctl.inspect(job[role])).loaded)) throw error
      await launchctl.kickstart(job[role], {kill: false})
    }
  }

  /**
   * Restarts one job gracefully (`Launchctl.restart`: SIGTERM, a bounded
   * wait for it to drain and exit, kickstart without -k) when launchd holds
   * it, bringing it up when it no longer does (113 or 3).
   */
  async function replace(role: Role): Promise<void> {
    try {
      ensureLogFolder()
      await launchctl.restart(job[role])
    } catch (error) {
      if (!(error instanceof LaunchctlError && error.refusal === 'not-loaded')) throw error
      await bringUp(role)
    }
  }

  /** Boots out the held jobs among `roles`, the watchdog first, waiting until launchd has let go of each. */
  async function bootOut(roles: readonly Role[], jobs: Record<Role, JobState>): Promise<void> {
    for (const role of [...roles].reverse()) if (jobs[role].held !== 'not-loaded') await launchctl.unload(job[role])
  }

  const driver: Driver = {
    name: 'launchd',
    platform: 'macos',
    manager: 'launchd user domain',
    kind: {one: 'launchd user agent', many: 'launchd user agents', file: 'plist'},
    folder: paths.launchAgentsDir,
    // A kickstart runs the definition launchd already holds: only a new bootstrap reads the fixed file.
    reloadHint: `${NAMES.bin} service stop && ${NAMES.bin} service start (or re-run ${NAMES.bin} service install --port <port>, which writes it anew)`,
    configErrorNote: `, yet launchd starts it again every ${THROTTLE_SECONDS} s, and each start fails the same way`,
    watchdogExitRevivesServer: false,

    /**
     * Refuses install, start and restart as root (uid 0, as under sudo): the
     * agents would be loaded into root's own session, `gui/0`, not the
     * user's, and run the server as root.
     */
    admit(command) {
      if (ctx.uid !== 0) return
      throw new UserError(`Refusing to ${command} the launchd agents as root: they would run in root's session (gui/0), not in yours.`, {
        details: [`Run it as yourself, without sudo: ${NAMES.bin} service ${command}`],
      })
    },

    jobName: (role) => job[role].label,
    files: (role) => [job[role].plistPath],

    render(spec, roles) {
      return roles.map((role) => ({path: job[role].plistPath, content: buildPlist(role === 'server' ? renderServerPlist(spec) : renderWatchdogPlist(spec))}))
    },

    write(files) {
      // launchd opens the log files the plists name, but not their folder.
      mkdirSync(paths.serverDir, {recursive: true})
      writeFilesAtomically(files)
    },

    remove: (role) => removeExisting([job[role].plistPath]),

    read(role): Definition | undefined {
      const installed = readInstalledPlist(job[role].plistPath)
      if (!installed) return undefined
      const {text, program, nodeDir, problem} = installed
      return {file: job[role].plistPath, text, program, nodeDir, ...(problem === undefined ? {target: installedTarget(installed)} : {problem})}
    },

    findMistake: (definition) => findPlistMistake(parsePlistText(definition.text)),

    async inspect(): Promise<Inspection> {
      try {
        // The watchdog first, as everything that changes the jobs goes.
        const [watchdog, server] = [await launchctl.inspect(watchdogJob), await launchctl.inspect(serverJob)]
        return {jobs: {server: jobState(server, serverJob, spawnFacts('server')), watchdog: jobState(watchdog, watchdogJob, spawnFacts('watchdog'))}}
      } catch (error) {
        if (!(error instanceof UserError)) throw error
        return {unreachable: [error.message, ...error.details]}
      }
    },

    mainPid: async (role) => (await printed(role))?.pid,
    gaveUp: async (role) => {
      const state = await printed(role)
      if (state === undefined) return false
      const {serverWrote} = spawnFacts(role)
      return spawnFailed(state, serverWrote) || exitedWithConfigError(state, serverWrote)
    },

    loadPlan: (roles) => [
      ...[...roles].reverse().map((role) => bootout(role)),
      ...roles.flatMap((role) => [{argv: [LAUNCHCTL, 'enable', `${domain}/${job[role].label}`]}, {argv: [LAUNCHCTL, 'bootstrap', domain, job[role].plistPath]}]),
    ],

    unloadPlan: (role) => [bootout(role)],

    async load(roles, jobs) {
      await bootOut(roles, jobs)
      starting()
      for (const role of roles) {
        ensureLogFolder()
        await launchctl.load(job[role])
      }

      return []
    },

    async unload(role, state) {
      if (state.held === 'not-loaded') return undefined
      await launchctl.unload(job[role])
      return `Stopped ${job[role].label}`
    },

    async start(roles) {
      starting()
      for (const role of roles) await bringUp(role)
    },

    // A job launchd holds is started again by it (KeepAlive): stopping is booting out, and the plist stays for the next login.
    stop: (roles, jobs) => bootOut(roles, jobs),

    async restart(roles, jobs) {
      starting()
      for (const role of roles) await (jobs[role].held === 'not-loaded' ? bringUp(role) : replace(role))
    },

    logTail: async (role, lines) => recentLines(outputFiles[role], lines).map((line) => line.text),

    async logs(options) {
      const files = launchdLogFiles(paths)
      const count = await readLogs(files, options)
      const names = files.map((log) => basename(log.file))
      return {
        count,
        readable: true,
        message: count === 0 ? `No log lines yet in ${paths.serverDir}.` : `${count} ${count === 1 ? 'line' : 'lines'} from ${paths.serverDir}.`,
        details: [`Files: ${names.slice(0, -1).join(', ')} and ${names.at(-1)}`],
      }
    },

    portOwnerCommand: (port) => `lsof -nP -iTCP:${port} -sTCP:LISTEN`,
  }
  return driver
}
