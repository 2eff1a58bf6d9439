import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {UserError} from '../../errors.js'
import {commandText, removeFile, writeFilesAtomically} from '../../files.js'
import {NAMES, pathsFor, serverUrl} from '../../paths.js'
import {plannedWriteLines} from '../render.js'
import {makeUnitSpec} from '../spec.js'
import type {Backend, InstallOptions, InstallPlan, LogsOptions, OperateOptions, PlannedFile, ServiceContext, ServiceResult, UnitSpec} from '../types.js'
import {type ServerTarget, verifyServing} from '../verify.js'
import {journalTail, readJournal} from './journal.js'
import {portOwnerCommand, readText, systemdStatus} from './status.js'
import {createSystemctl, exitedWithConfigError, firstLine, isUp, mainPidOf, orphaned, type ShownUnit, stateText} from './systemctl.js'
import {readUnitCommand, renderServerUnit, renderWatchdogUnit, SERVER_UNIT, WATCHDOG_UNIT} from './unit.js'
import {wslNote} from './wsl.js'

const PLATFORM = 'linux'

/**
 * Start jobs are queued, not waited for: a blocking start of a unit in
 * `activating (auto-restart)` lasts until its restart delay runs out, which
 * would outlast `--wait`. systemd still refuses a unit it cannot load at
 * once; a job that fails later (a start limit) leaves the unit `failed`,
 * which the health wait reads.
 */
const NO_BLOCK = '--no-block'

/** How many of the server's last journal lines a diagnosis shows. */
const DIAGNOSIS_LINES = 10

function failed(message: string, details: string[] = []): ServiceResult {
  return {success: false, platform: PLATFORM, message, details}
}

/** Running in systemd's sense: started or on its way up or down (a failed or stopped unit is not). */
function running(unit: ShownUnit): boolean {
  return ['active', 'activating', 'reloading', 'deactivating'].includes(unit.ActiveState ?? '')
}

/**
 * The systemd backend: two user units under `~/.config/systemd/user`
 * (`$XDG_CONFIG_HOME` when set), driven with `systemctl --user`.
 */
export function createSystemdBackend(ctx: ServiceContext): Backend {
  const paths = pathsFor(ctx.home, ctx.env)
  const unitFile = {[SERVER_UNIT]: paths.systemdServerUnit, [WATCHDOG_UNIT]: paths.systemdWatchdogUnit}
  const systemctl = createSystemctl(ctx)

  function plan(spec: UnitSpec, options: {watchdog: boolean}): InstallPlan {
    const units = options.watchdog ? [SERVER_UNIT, WATCHDOG_UNIT] : [SERVER_UNIT]
    const files: PlannedFile[] = [{path: paths.systemdServerUnit, content: renderServerUnit(spec)}]
    if (options.watchdog) files.push({path: paths.systemdWatchdogUnit, content: renderWatchdogUnit(spec)})
    return {
      files,
      commands: [
        ['systemctl', '--user', 'daemon-reload'],
        // Re-running install is how people upgrade: units that already run pick up the new definition.
        ['systemctl', '--user', 'try-restart', NO_BLOCK, ...units],
        ...units.map((unit) => ['systemctl', '--user', 'enable', '--now', NO_BLOCK, unit]),
        ['loginctl', 'enable-linger', ctx.user],
      ],
    }
  }

  /** Stops, disables and removes the watchdog unit (install --no-watchdog over an install that had one). */
  function dropWatchdogCommands(): string[][] {
    return existsSync(paths.systemdWatchdogUnit) ? [['systemctl', '--user', 'disable', '--now', WATCHDOG_UNIT]] : []
  }

  /**
   * Ends install, start and restart as `verifyServing` says: the server
   * must answer from the unit's main PID; the wait ends early once the unit
   * is `failed`, and the diagnosis tells the unit's state and the server's
   * last journal lines.
   */
  async function verified(
    command: 'install' | 'start' | 'restart',
    target: ServerTarget,
    timing: {startedAt: number; waitSeconds: number; previousPid?: number},
    done: ServiceResult,
  ): Promise<ServiceResult> {
    return verifyServing(done, {
      platform: PLATFORM,
      command,
      target,
      timing,
      supervisor: {mainPid: () => systemctl.mainPid(), gaveUp: () => systemctl.serverFailed()},
      async diagnose() {
        const [shown, logTail] = await Promise.all([systemctl.show(), journalTail(ctx, SERVER_UNIT, DIAGNOSIS_LINES)])
        if (!('units' in shown)) return {supervisorState: 'unknown: the systemd user manager does not answer', logTail}
        const server = shown.units[SERVER_UNIT]
        return {
          supervisorState: `${stateText(server)} (${SERVER_UNIT})`,
          logTail,
          configError: exitedWithConfigError(server),
        }
      },
      portOwnerCommand,
    })
  }

  async function install(options: InstallOptions): Promise<ServiceResult> {
    const startedAt = performance.now()
    let spec: UnitSpec
    try {
      spec = makeUnitSpec(ctx, options)
    } catch (error) {
      if (error instanceof UserError) return failed(error.message, error.details)
      throw error
    }

    const planned = plan(spec, {watchdog: options.watchdog})
    const drop = options.watchdog ? [] : dropWatchdogCommands()
    if (options.dryRun) {
      const details = ['Nothing was changed. An install would:']
      for (const file of planned.files) details.push(...plannedWriteLines(file))

      for (const command of drop) details.push(`run: ${commandText(command)}`, `remove: ${paths.systemdWatchdogUnit}`)

      for (const command of planned.commands) details.push(`run: ${commandText(command)}`)
      return {success: true, platform: PLATFORM, message: 'Dry run: amplifier-distro service install', details}
    }

    // Check for the manager before touching anything: `enable --now` without one still creates symlinks.
    const before = await systemctl.show()
    if ('problem' in before) return failed('systemd user manager is not reachable; nothing was installed.', before.problem)
    // A server that runs now is replaced (try-restart): the one that must answer is the new one.
    const previousPid = mainPidOf(before.units[SERVER_UNIT])

    try {
      writeFilesAtomically(planned.files)
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message
      return failed(`Cannot write unit files to ${paths.systemdUserDir} (${reason}); nothing was installed.`, [
        'Make sure that folder (or $XDG_CONFIG_HOME) is a writable directory, then run install again.',
      ])
    }

    for (const command of drop) {
      const answer = await ctx.exec(command[0], command.slice(1), {env: ctx.env})
      if (answer.code !== 0) return failed(`${commandText(command)} failed (exit ${answer.code}).`, [firstLine(answer)])
      removeFile(paths.systemdWatchdogUnit)
    }

    const notes: string[] = []
    const reset = resetFailed(before.units, [SERVER_UNIT, ...(options.watchdog ? [WATCHDOG_UNIT] : [])]).map((args) => ['systemctl', '--user', ...args])
    for (const command of [...reset, ...planned.commands]) {
      const answer = await ctx.exec(command[0], command.slice(1), {env: ctx.env})
      if (answer.code === 0) continue
      if (command[0] === 'loginctl') {
        notes.push(
          `Note: could not enable lingering (${firstLine(answer) || `exit ${answer.code}`}); the service starts when you log in, not at boot.`,
          `  To start it at boot: sudo loginctl enable-linger ${ctx.user}`,
        )
        continue
      }

      return failed(`${commandText(command)} failed (exit ${answer.code}).`, [
        ...answer.stderr.trim().split('\n').filter(Boolean),
        `Inspect: ${NAMES.bin} service status, and ${NAMES.bin} service logs`,
        `Remove the half-finished install: ${NAMES.bin} service uninstall`,
      ])
    }

    const unitNames = planned.files.map((file) => file.path.split('/').at(-1)).join(' and ')
    const done: ServiceResult = {
      success: true,
      platform: PLATFORM,
      message: `Installed ${unitNames} (systemd user ${planned.files.length > 1 ? 'units' : 'unit'}).`,
      details: [
        ...planned.files.map((file) => `Wrote ${file.path}`),
        `Runs: ${spec.bin}`,
        `Serves: ${serverUrl(spec.host, spec.port)}`,
        `Status: ${NAMES.bin} service status`,
        ...notes,
        ...wslNote(ctx),
      ],
    }
    return verified('install', spec, {startedAt, waitSeconds: options.waitSeconds, ...(previousPid ? {previousPid} : {})}, done)
  }

  async function uninstall(): Promise<ServiceResult> {
    const files = {[SERVER_UNIT]: existsSync(paths.systemdServerUnit), [WATCHDOG_UNIT]: existsSync(paths.systemdWatchdogUnit)}
    const notInstalled: ServiceResult = {
      success: true,
      platform: PLATFORM,
      message: 'amplifier-distro service is not installed; nothing to do.',
      details: [],
    }
    const answer = await systemctl.show()
    if ('problem' in answer) {
      if (!files[SERVER_UNIT] && !files[WATCHDOG_UNIT]) return notInstalled
      return failed('systemd user manager is not reachable; cannot stop the service, nothing was removed.', answer.problem)
    }

    const shown = answer.units
    // The watchdog goes first, so it cannot start the server again while that is being stopped.
    const units = [WATCHDOG_UNIT, SERVER_UNIT].filter((unit) => files[unit] || orphaned(shown[unit], unitFile[unit]))
    if (units.length === 0) return notInstalled

    const details: string[] = []
    for (const unit of units) {
      // A unit that is not running (or that systemd could not load) has nothing to stop.
      const steps = [...(isUp(shown[unit]) ? [['stop', unit]] : []), ...(files[unit] ? [['disable', unit]] : [])]
      for (const step of steps) {
        const answer = await systemctl.run(...step)
        if (answer.code !== 0) {
          return failed(`systemctl --user ${step.join(' ')} failed (exit ${answer.code}).`, [firstLine(answer), `Try again: ${NAMES.bin} service uninstall`])
        }
      }

      const done = steps.map(([verb]) => (verb === 'stop' ? 'stopped' : 'disabled')).join(' and ')
      details.push(`${done.charAt(0).toUpperCase()}${done.slice(1)} ${unit}`)
    }

    for (const unit of units) {
      // disable removes the symlink; a unit file deleted by hand leaves it behind.
      removeFile(join(paths.systemdUserDir, 'default.target.wants', unit))
      if (files[unit]) {
        removeFile(unitFile[unit])
        details.push(`Removed ${unitFile[unit]}`)
      }
    }

    await systemctl.run('daemon-reload')
    // Forgets a failed state; answers "not loaded" for units that are already gone, which is fine.
    await systemctl.run('reset-failed', ...units)
    details.push(`Data in ${paths.amplifierHome} was left in place.`)
    return {success: true, platform: PLATFORM, message: 'Uninstalled amplifier-distro service.', details}
  }

  const notInstalled = (command: string) =>
    failed(`amplifier-distro service is not installed, so there is nothing to ${command}.`, [`Install it: ${NAMES.bin} service install`])

  /**
   * What start, stop and restart need before they act: the server's address
   * from its unit file and both units' state. A failed result when nothing
   * is installed or the manager does not answer.
   */
  async function prepare(command: 'start' | 'stop' | 'restart'): Promise<ServiceResult | {target: ServerTarget; units: Record<string, ShownUnit>; watchdog: boolean}> {
    const text = readText(paths.systemdServerUnit)
    const unitCommand = text === undefined ? undefined : readUnitCommand(text)
    if (!unitCommand) return notInstalled(command)
    const answer = await systemctl.show()
    if ('problem' in answer) return failed(`systemd user manager is not reachable; cannot ${command} the service.`, answer.problem)
    return {target: unitCommand, units: answer.units, watchdog: existsSync(paths.systemdWatchdogUnit)}
  }

  /** Runs systemctl steps in order, up to the first that fails, whose failure it returns (what went wrong and where to look). */
  async function steps(list: string[][]): Promise<ServiceResult | undefined> {
    for (const args of list) {
      const answer = await systemctl.run(...args)
      if (answer.code === 0) continue
      return failed(`systemctl --user ${args.join(' ')} failed (exit ${answer.code}).`, [
        ...answer.stderr.trim().split('\n').filter(Boolean),
        `See why: ${NAMES.bin} service status, and ${NAMES.bin} service logs`,
      ])
    }

    return undefined
  }

  /**
   * Forgets the named units' failed state and their start count before a
   * person's start, restart or install: the start limit is there to end a
   * crash loop, not to refuse a command, and a unit started five times in
   * the minute is refused although it runs. Only units the manager has
   * loaded: it refuses reset-failed for any other, which has no count anyway.
   */
  function resetFailed(units: Record<string, ShownUnit>, names: string[]): string[][] {
    const known = names.filter((unit) => units[unit]?.LoadState === 'loaded')
    return known.length > 0 ? [['reset-failed', ...known]] : []
  }

  async function start(options: OperateOptions): Promise<ServiceResult> {
    const startedAt = performance.now()
    const ready = await prepare('start')
    if ('success' in ready) return ready
    const units = ready.watchdog ? [SERVER_UNIT, WATCHDOG_UNIT] : [SERVER_UNIT]
    const wasRunning = running(ready.units[SERVER_UNIT]) && (!ready.watchdog || running(ready.units[WATCHDOG_UNIT]))
    const problem = await steps([...resetFailed(ready.units, units), ['start', NO_BLOCK, ...units]])
    if (problem) return problem

    const done: ServiceResult = {
      success: true,
      platform: PLATFORM,
      message: wasRunning ? 'amplifier-distro service was already running.' : `Started ${units.join(' and ')}.`,
      details: [`Serves: ${serverUrl(ready.target.host, ready.target.port)}`, `Stop it: ${NAMES.bin} service stop`],
    }
    return verified('start', ready.target, {startedAt, waitSeconds: options.waitSeconds}, done)
  }

  async function stop(): Promise<ServiceResult> {
    const ready = await prepare('stop')
    if ('success' in ready) return ready
    const states = [SERVER_UNIT, ...(ready.watchdog ? [WATCHDOG_UNIT] : [])].map((unit) => `${unit}: ${stateText(ready.units[unit])}`)
    if (!running(ready.units[SERVER_UNIT]) && !running(ready.units[WATCHDOG_UNIT])) {
      return {success: true, platform: PLATFORM, message: 'amplifier-distro service is already stopped.', details: [...states, `Start it: ${NAMES.bin} service start`]}
    }

    // PartOf= takes the watchdog along with the server; naming it too also stops a watchdog whose server is already down.
    const problem = await steps([['stop', SERVER_UNIT, ...(ready.watchdog ? [WATCHDOG_UNIT] : [])]])
    if (problem) return problem
    return {
      success: true,
      platform: PLATFORM,
      message: `Stopped ${ready.watchdog ? `${SERVER_UNIT} and ${WATCHDOG_UNIT}` : SERVER_UNIT}.`,
      details: [
        `They stay stopped until ${NAMES.bin} service start (or restart, or install), or the next login or boot; the units stay installed and enabled.`,
        `Start it: ${NAMES.bin} service start`,
      ],
    }
  }

  async function restart(options: OperateOptions): Promise<ServiceResult> {
    const startedAt = performance.now()
    const ready = await prepare('restart')
    if ('success' in ready) return ready
    const previousPid = mainPidOf(ready.units[SERVER_UNIT])
    const units = ready.watchdog ? [SERVER_UNIT, WATCHDOG_UNIT] : [SERVER_UNIT]
    // PartOf= restarts a running watchdog with the server; a stopped one is started after it.
    const problem = await steps([...resetFailed(ready.units, units), ['restart', NO_BLOCK, SERVER_UNIT], ...(ready.watchdog ? [['start', NO_BLOCK, WATCHDOG_UNIT]] : [])])
    if (problem) return problem

    const done: ServiceResult = {
      success: true,
      platform: PLATFORM,
      message: previousPid ? `Restarted ${units.join(' and ')}.` : `Started ${units.join(' and ')} (the service was not running).`,
      details: [`Serves: ${serverUrl(ready.target.host, ready.target.port)}`],
    }
    return verified('restart', ready.target, {startedAt, waitSeconds: options.waitSeconds, ...(previousPid ? {previousPid} : {})}, done)
  }

  async function logs(options: LogsOptions): Promise<ServiceResult> {
    if (!existsSync(paths.systemdServerUnit) && !existsSync(paths.systemdWatchdogUnit)) return notInstalled('show logs of')
    return readJournal(ctx, options)
  }

  return {platform: PLATFORM, plan, install, uninstall, status: () => systemdStatus(ctx, systemctl), start, stop, restart, logs}
}
