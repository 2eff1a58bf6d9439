import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {UserError} from '../../../errors.js'
import {commandText, removeExisting, removeFile, writeFilesAtomically} from '../../../files.js'
import {NAMES, pathsFor} from '../../../paths.js'
import type {Definition, Driver, DriverContext, Inspection, JobState, PlannedCommand, Role} from '../../driver.js'
import {readText} from '../../stale.js'
import type {LogsOptions, PlannedFile, UnitSpec} from '../../types.js'
import {journalTail, readJournal} from './journal.js'
import {createSystemctl, exitedWithConfigError, firstLine, mainPidOf, orphaned, type ShownUnit, stateText} from './systemctl.js'
import {execStartLine, nodeDirOf, readUnitCommand, renderServerUnit, renderWatchdogUnit, SERVER_UNIT, WATCHDOG_UNIT} from './unit.js'

const SYSTEMCTL = 'systemctl'

/**
 * Start jobs are queued, not waited for: a blocking start of a unit in
 * `activating (auto-restart)` lasts until its restart delay runs out, which
 * would outlast `--wait`. systemd still refuses a unit it cannot load at
 * once; a job that fails later (a start limit) leaves the unit `failed`,
 * which the health wait reads.
 */
const NO_BLOCK = '--no-block'

const UNIT: Record<Role, string> = {server: SERVER_UNIT, watchdog: WATCHDOG_UNIT}

/** Running in systemd's sense: started or on its way up or down (a failed or stopped unit is not). */
function running(unit: ShownUnit): boolean {
  return ['active', 'activating', 'reloading', 'deactivating'].includes(unit.ActiveState ?? '')
}

/** One unit's `systemctl show` answer in the driver interface's terms. */
export function jobState(unit: ShownUnit, file: string): JobState {
  const state = unit.ActiveState ?? 'unknown'
  const sub = unit.SubState && unit.SubState !== state ? ` (${unit.SubState})` : ''
  const pid = mainPidOf(unit)
  return {
    held: unit.LoadState === 'not-found' || unit.LoadState === undefined ? 'not-loaded' : 'loaded',
    state,
    summary: state === 'inactive' ? 'stopped' : `${state}${sub}`,
    detail: stateText(unit),
    running: running(unit),
    ...(pid ? {pid} : {}),
    gaveUp: state === 'failed',
    configError: exitedWithConfigError(unit),
    ...(existsSync(file) && unit.LoadState !== 'loaded' ? {unusable: unit.LoadState ?? 'unknown'} : {}),
    orphaned: orphaned(unit, file),
    ...(state === 'failed' ? {failure: unit.Result ?? 'unknown reason'} : {}),
  }
}

/** True when this process is the main process of one of our units: systemd sets SYSTEMD_EXEC_PID to the PID it started, and a shell started from some unit passes its own on. */
export function startedBy(env: NodeJS.ProcessEnv, pid: number): boolean {
  return env.SYSTEMD_EXEC_PID === String(pid)
}

/**
 * The systemd driver: two user units under `~/.config/systemd/user`
 * (`$XDG_CONFIG_HOME` when set), driven with `systemctl --user`, their
 * output read from the journal.
 */
export function createDriver(ctx: DriverContext): Driver {
  const paths = pathsFor(ctx.home, ctx.env)
  const unitFile: Record<Role, string> = {server: paths.systemdServerUnit, watchdog: paths.systemdWatchdogUnit}
  const systemctl = createSystemctl(ctx)
  const units = (roles: readonly Role[]) => roles.map((role) => UNIT[role])

  /** Runs `systemctl --user …args`; a refusal becomes a UserError quoting systemd. */
  async function run(...args: string[]): Promise<void> {
    const answer = await systemctl.run(...args)
    if (answer.code === 0) return
    throw new UserError(`systemctl --user ${args.join(' ')} failed (exit ${answer.code}).`, {
      details: [...answer.stderr.trim().split('\n').filter(Boolean), `See why: ${NAMES.bin} service status, and ${NAMES.bin} service logs`],
    })
  }

  /**
   * Forgets the units' failed state and their start count before a
   * person's start, restart or install: the start limit is there to end a
   * crash loop, not to refuse a command, and a unit started five times in
   * the minute is refused although it runs. Only units the manager has
   * loaded: it refuses reset-failed for any other, which has no count anyway.
   */
  async function resetFailed(roles: readonly Role[], jobs: Record<Role, JobState>): Promise<void> {
    const known = roles.filter((role) => jobs[role].held === 'loaded' && jobs[role].unusable === undefined)
    if (known.length > 0) await run('reset-failed', ...units(known))
  }

  const driver: Driver = {
    name: 'systemd',
    platform: 'linux',
    manager: 'systemd user manager',
    kind: {one: 'systemd user unit', many: 'systemd user units', file: 'unit file'},
    folder: paths.systemdUserDir,
    reloadHint: `${NAMES.bin} service restart (or re-run ${NAMES.bin} service install, which writes the line anew)`,
    configErrorNote: ', so systemd does not restart it',
    watchdogExitRevivesServer: true,

    jobName: (role) => UNIT[role],
    files: (role) => [unitFile[role]],

    render(spec: UnitSpec, roles) {
      return roles.map((role) => ({path: unitFile[role], content: role === 'server' ? renderServerUnit(spec) : renderWatchdogUnit(spec)}))
    },

    write(files: readonly PlannedFile[]) {
      writeFilesAtomically(files)
    },

    remove: (role) => removeExisting([unitFile[role]]),

    read(role): Definition | undefined {
      const text = readText(unitFile[role])
      if (text === undefined) return undefined
      const command = readUnitCommand(text)
      return {
        file: unitFile[role],
        text,
        program: command?.argv[0],
        nodeDir: nodeDirOf(command?.path),
        ...(command ? {target: {host: command.host, port: command.port}} : {}),
      }
    },

    findMistake: (definition) => execStartLine(definition.text),

    async inspect(): Promise<Inspection> {
      const answer = await systemctl.show()
      if ('problem' in answer) return {unreachable: answer.problem}
      return {jobs: {server: jobState(answer.units[SERVER_UNIT], unitFile.server), watchdog: jobState(answer.units[WATCHDOG_UNIT], unitFile.watchdog)}}
    },

    mainPid: (role) => systemctl.mainPid(UNIT[role]),
    gaveUp: async (role) => (await systemctl.activeState(UNIT[role])) === 'failed',

    loadPlan(roles) {
      const names = units(roles)
      return [
        [SYSTEMCTL, '--user', 'daemon-reload'],
        // Re-running install is how people upgrade: units that already run pick up the new definition.
        [SYSTEMCTL, '--user', 'try-restart', NO_BLOCK, ...names],
        ...names.map((unit) => [SYSTEMCTL, '--user', 'enable', '--now', NO_BLOCK, unit]),
        ['loginctl', 'enable-linger', ctx.user],
      ].map((argv) => ({argv}))
    },

    unloadPlan: (role): PlannedCommand[] => [{argv: [SYSTEMCTL, '--user', 'disable', '--now', UNIT[role]]}],

    async load(roles, jobs) {
      await resetFailed(roles, jobs)
      const notes: string[] = []
      for (const {argv} of driver.loadPlan(roles)) {
        const answer = await ctx.exec(argv[0], argv.slice(1), {env: ctx.env})
        if (answer.code === 0) continue
        if (argv[0] !== SYSTEMCTL) {
          notes.push(
            `Note: could not enable lingering (${firstLine(answer) || `exit ${answer.code}`}); the service starts when you log in, not at boot.`,
            `  To start it at boot: sudo loginctl enable-linger ${ctx.user}`,
          )
          continue
        }

        throw new UserError(`${commandText(argv)} failed (exit ${answer.code}).`, {
          details: [...answer.stderr.trim().split('\n').filter(Boolean), `See why: ${NAMES.bin} service status, and ${NAMES.bin} service logs`],
        })
      }

      return notes
    },

    async unload(role, job) {
      const unit = UNIT[role]
      const file = existsSync(unitFile[role])
      // A unit that is not running (or that systemd could not load) has nothing to stop.
      const steps = [...(job.running || job.gaveUp ? [['stop', unit]] : []), ...(file ? [['disable', unit]] : [])]
      for (const step of steps) await run(...step)
      // disable removes the symlink; a unit file deleted by hand leaves it behind.
      removeFile(join(paths.systemdUserDir, 'default.target.wants', unit))
      const done = steps.map(([verb]) => (verb === 'stop' ? 'stopped' : 'disabled')).join(' and ')
      return `${done.charAt(0).toUpperCase()}${done.slice(1)} ${unit}`
    },

    async forget(roles) {
      await systemctl.run('daemon-reload')
      // Forgets a failed state; answers "not loaded" for units that are already gone, which is fine.
      await systemctl.run('reset-failed', ...units(roles))
    },

    async start(roles, jobs) {
      await resetFailed(roles, jobs)
      await run('start', NO_BLOCK, ...units(roles))
    },

    async stop(roles) {
      // PartOf= takes the watchdog along with the server; naming it too also stops a watchdog whose server is already down.
      await run('stop', ...units(roles))
    },

    async restart(roles, jobs) {
      await resetFailed(roles, jobs)
      // PartOf= restarts a running watchdog with the server; a stopped one is started after it.
      if (roles.includes('server')) await run('restart', NO_BLOCK, SERVER_UNIT)
      if (roles.includes('watchdog')) await run('start', NO_BLOCK, WATCHDOG_UNIT)
    },

    logTail: (role, lines) => journalTail(ctx, UNIT[role], lines),
    logs: (options: LogsOptions) => readJournal(ctx, options),
    portOwnerCommand: (port) => `ss -ltnp 'sport = :${port}'`,

    async statusNotes() {
      const answer = await ctx.exec('loginctl', ['show-user', ctx.user, '--property=Linger', '--value'], {env: ctx.env})
      const value = answer.stdout.trim()
      if (answer.code !== 0 || (value !== 'yes' && value !== 'no')) return {details: []}
      if (value === 'yes') return {linger: true, details: ['Linger:   on (the service runs without a login session, and starts at boot)']}
      return {
        linger: false,
        details: [
          'Linger:   off (the service runs only while you are logged in)',
          `  To keep it running after logout and start it at boot: loginctl enable-linger ${ctx.user} (with sudo if that is refused)`,
        ],
      }
    },
  }
  return driver
}
