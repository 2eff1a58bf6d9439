import {existsSync, mkdirSync} from 'node:fs'
import {basename} from 'node:path'

import {UserError} from '../../../errors.js'
import {removeExisting, writeFilesAtomically} from '../../../files.js'
import {NAMES, pathsFor} from '../../../paths.js'
import type {Definition, Driver, DriverContext, Inspection, JobState, PlannedCommand, Role} from '../../driver.js'
import {exitedWithConfigError, type JobState as PrintedJob, Launchctl, LaunchctlError} from './launchctl.js'
import {launchdLogFiles, readLogs, recentLines} from './logs.js'
import {buildPlist, findPlistMistake, installedTarget, type LaunchdJob, launchdJobs, parsePlistText, readInstalledPlist, renderServerPlist, renderWatchdogPlist, THROTTLE_SECONDS} from './plist.js'

const LAUNCHCTL = 'launchctl'

/** launchd's state for a job as a diagnosis tells it. */
export function describeJobState(state: PrintedJob): string {
  if (!state.loaded) return 'not loaded in launchd'
  const pid = state.pid ? `, PID ${state.pid}` : ''
  const exited = state.pid === undefined && state.lastExitCode !== undefined
  const config = exitedWithConfigError(state) ? ` (a configuration error: ${NAMES.bin} service status names the line to fix)` : ''
  return `${state.state}${pid}${exited ? `, last exit code ${state.lastExitCode}${config}` : ''}`
}

/** One job as `launchctl print` reports it, in the driver interface's terms. */
export function jobState(state: PrintedJob, plistPath: string): JobState {
  const configError = exitedWithConfigError(state)
  return {
    held: state.loaded ? 'loaded' : 'not-loaded',
    state: state.state,
    summary: state.state,
    detail: describeJobState(state),
    // A held job that exited with a failure is started again by launchd (KeepAlive), so it counts as running.
    running: state.loaded && (state.pid !== undefined || state.state !== 'not running' || configError),
    ...(state.pid === undefined ? {} : {pid: state.pid}),
    gaveUp: configError,
    configError,
    orphaned: state.loaded && !existsSync(plistPath),
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

/**
 * The launchd driver: per-user agents in `~/Library/LaunchAgents`, loaded
 * into the `gui/<uid>` domain; their output goes to files under
 * `~/.amplifier/server`. Every launchctl call goes through `ctx.exec`.
 */
export function createDriver(ctx: DriverContext): Driver {
  const [serverJob, watchdogJob] = launchdJobs(ctx.home)
  const job: Record<Role, LaunchdJob> = {server: serverJob, watchdog: watchdogJob}
  const paths = pathsFor(ctx.home, ctx.env)
  const launchctl = new Launchctl(ctx, {retry: `${NAMES.bin} ${ctx.command ?? 'service'}`})
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
    if (state.loaded) {
      await launchctl.kickstart(job[role], {kill: false})
      return
    }

    try {
      await launchctl.load(job[role])
    } catch (error) {
      // launchd took the job between print and bootstrap (5: it already holds it): start what it holds.
      if (!(error instanceof LaunchctlError && error.refusal === 'io-error' && (await launchctl.inspect(job[role])).loaded)) throw error
      await launchctl.kickstart(job[role], {kill: false})
    }
  }

  /** Restarts one job: `kickstart -k` when launchd holds it, bringing it up when it no longer does (113 or 3). */
  async function replace(role: Role): Promise<void> {
    try {
      await launchctl.kickstart(job[role], {kill: true})
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
        return {jobs: {server: jobState(server, serverJob.plistPath), watchdog: jobState(watchdog, watchdogJob.plistPath)}}
      } catch (error) {
        if (!(error instanceof UserError)) throw error
        return {unreachable: [error.message, ...error.details]}
      }
    },

    mainPid: async (role) => (await printed(role))?.pid,
    gaveUp: async (role) => {
      const state = await printed(role)
      return state !== undefined && exitedWithConfigError(state)
    },

    loadPlan: (roles) => [
      ...[...roles].reverse().map((role) => bootout(role)),
      ...roles.flatMap((role) => [{argv: [LAUNCHCTL, 'enable', `${domain}/${job[role].label}`]}, {argv: [LAUNCHCTL, 'bootstrap', domain, job[role].plistPath]}]),
    ],

    unloadPlan: (role) => [bootout(role)],

    async load(roles, jobs) {
      await bootOut(roles, jobs)
      for (const role of roles) await launchctl.load(job[role])
      return []
    },

    async unload(role, state) {
      if (state.held === 'not-loaded') return undefined
      await launchctl.unload(job[role])
      return `Stopped ${job[role].label}`
    },

    async start(roles) {
      for (const role of roles) await bringUp(role)
    },

    // A job launchd holds is started again by it (KeepAlive): stopping is booting out, and the plist stays for the next login.
    stop: (roles, jobs) => bootOut(roles, jobs),

    async restart(roles, jobs) {
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
