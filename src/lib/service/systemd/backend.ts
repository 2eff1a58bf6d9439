import {existsSync} from 'node:fs'
import {isIP} from 'node:net'
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
import {portOwner} from './port-owner.js'
import {createSystemctl, exitedWithConfigError, firstLine, isUp, mainPidOf, orphaned, type ShownUnit, stateText} from './systemctl.js'
import {readListenStream, readUnitCommand, renderServerUnit, renderSocketUnit, renderWatchdogUnit, SERVER_UNIT, SOCKET_UNIT, WATCHDOG_UNIT} from './unit.js'
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
 * The IP address the socket unit listens on for `host`: an address as it
 * is, a hostname resolved now (systemd's `ListenStream=` takes no names),
 * as `serve` would resolve it to bind.
 */
async function listenAddress(host: string): Promise<string> {
  if (isIP(host)) return host
  try {
    return (await (await import('node:dns/promises')).lookup(host)).address
  } catch (error) {
    throw new UserError(`Cannot resolve the host ${JSON.stringify(host)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`, {
      details: ['Use an IP address, such as --host 127.0.0.1, or a name this machine resolves.'],
    })
  }
}

/** A unit that is loaded: the manager knows it (a socket a socket-less install never wrote is not). */
function loaded(unit: ShownUnit | undefined): boolean {
  return unit?.LoadState === 'loaded'
}

/**
 * The systemd backend: three user units under `~/.config/systemd/user`
 * (`$XDG_CONFIG_HOME` when set), driven with `systemctl --user`: the
 * server, its socket (systemd holds the port, so connections wait instead
 * of being refused while the server restarts) and the watchdog.
 */
export function createSystemdBackend(ctx: ServiceContext): Backend {
  const paths = pathsFor(ctx.home, ctx.env)
  const unitFile: Record<string, string> = {
    [SERVER_UNIT]: paths.systemdServerUnit,
    [WATCHDOG_UNIT]: paths.systemdWatchdogUnit,
    [SOCKET_UNIT]: paths.systemdSocketUnit,
  }
  const systemctl = createSystemctl(ctx)

  /**
   * The files and commands of an install. Only the server and the watchdog
   * are enabled: the socket must not be (see renderSocketUnit), and the
   * server's `Requires=` starts it.
   */
  function plan(spec: UnitSpec, options: {watchdog: boolean; listenAddress?: string}): InstallPlan {
    const units = options.watchdog ? [SERVER_UNIT, WATCHDOG_UNIT] : [SERVER_UNIT]
    const files: PlannedFile[] = [{path: paths.systemdServerUnit, content: renderServerUnit(spec)}]
    if (options.watchdog) files.push({path: paths.systemdWatchdogUnit, content: renderWatchdogUnit(spec)})
    files.push({path: paths.systemdSocketUnit, content: renderSocketUnit(spec, options.listenAddress ?? spec.host)})
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
        const socket = shown.units[SOCKET_UNIT]
        const socketFailed = socket?.ActiveState === 'failed' ? `; its socket is ${stateText(socket)} (${SOCKET_UNIT})` : ''
        return {
          supervisorState: `${stateText(server)} (${SERVER_UNIT})${socketFailed}`,
          logTail,
          configError: exitedWithConfigError(server),
          supervisorListens: socket?.ActiveState === 'active',
        }
      },
      portOwnerCommand,
      portOwner,
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

    let address: string
    try {
      address = await listenAddress(spec.host)
    } catch (error) {
      if (error instanceof UserError) return failed(error.message, error.details)
      throw error
    }

    const planned = plan(spec, {watchdog: options.watchdog, listenAddress: address})
    const drop = options.watchdog ? [] : dropWatchdogCommands()
    // A socket that listens elsewhere keeps listening there until it is restarted: stopping it
    // (which stops the server too) lets the enable --now below start it on the new address.
    const oldSocket = readText(paths.systemdSocketUnit)
    const newSocket = planned.files.find((file) => file.path === paths.systemdSocketUnit)?.content ?? ''
    const moveSocket = oldSocket !== undefined && readListenStream(oldSocket) !== readListenStream(newSocket) ? [['systemctl', '--user', 'stop', SOCKET_UNIT]] : []
    if (options.dryRun) {
      const details = ['Nothing was changed. An install would:']
      for (const file of planned.files) details.push(...plannedWriteLines(file))

      for (const command of drop) details.push(`run: ${commandText(command)}`, `remove: ${paths.systemdWatchdogUnit}`)

      for (const command of [...planned.commands.slice(0, 1), ...moveSocket, ...planned.commands.slice(1)]) details.push(`run: ${commandText(command)}`)
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
    const reset = resetFailed(before.units, [SERVER_UNIT, ...(options.watchdog ? [WATCHDOG_UNIT] : []), SOCKET_UNIT]).map((args) => ['systemctl', '--user', ...args])
    const move = isUp(before.units[SOCKET_UNIT] ?? {}) ? moveSocket : []
    for (const command of [...reset, ...planned.commands.slice(0, 1), ...move, ...planned.commands.slice(1)]) {
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

    const names = planned.files.map((file) => file.path.split('/').at(-1))
    const unitNames = names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names.at(-1)}` : names.join('')
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
    const files: Record<string, boolean> = Object.fromEntries(Object.entries(unitFile).map(([unit, file]) => [unit, existsSync(file)]))
    const notInstalled: ServiceResult = {
      success: true,
      platform: PLATFORM,
      message: 'amplifier-distro service is not installed; nothing to do.',
      details: [],
    }
    const answer = await systemctl.show()
    if ('problem' in answer) {
      if (!Object.values(files).some(Boolean)) return notInstalled
      return failed('systemd user manager is not reachable; cannot stop the service, nothing was removed.', answer.problem)
    }

    const shown = answer.units
    // The watchdog goes first, so it cannot start the server again while that is being stopped; the
    // socket last, which closes the port.
    const units = [WATCHDOG_UNIT, SERVER_UNIT, SOCKET_UNIT].filter((unit) => files[unit] || orphaned(shown[unit] ?? {}, unitFile[unit]))
    if (units.length === 0) return notInstalled

    const details: string[] = []
    // One stop job for all of them: the socket cannot start the server again while it is being stopped.
    const running = units.filter((unit) => isUp(shown[unit] ?? {}))
    // The socket was never enabled; a unit systemd could not load has nothing to disable.
    const enabled = units.filter((unit) => files[unit] && unit !== SOCKET_UNIT)
    for (const step of [...(running.length > 0 ? [['stop', ...running]] : []), ...(enabled.length > 0 ? [['disable', ...enabled]] : [])]) {
      const answer = await systemctl.run(...step)
      if (answer.code !== 0) {
        return failed(`systemctl --user ${step.join(' ')} failed (exit ${answer.code}).`, [firstLine(answer), `Try again: ${NAMES.bin} service uninstall`])
      }

      details.push(`${step[0] === 'stop' ? 'Stopped' : 'Disabled'} ${step.slice(1).join(', ')}`)
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
    // The server's Requires= starts the socket first.
    const problem = await steps([...resetFailed(ready.units, [...units, SOCKET_UNIT]), ['start', NO_BLOCK, ...units]])
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
    const socket = loaded(ready.units[SOCKET_UNIT]) ? [SOCKET_UNIT] : []
    const units = [SERVER_UNIT, ...(ready.watchdog ? [WATCHDOG_UNIT] : []), ...socket]
    const states = units.map((unit) => `${unit}: ${stateText(ready.units[unit])}`)
    if (!units.some((unit) => running(ready.units[unit]))) {
      return {success: true, platform: PLATFORM, message: 'amplifier-distro service is already stopped.', details: [...states, `Start it: ${NAMES.bin} service start`]}
    }

    // PartOf= takes the watchdog along with the server; naming it too also stops a watchdog whose server is already down.
    // The socket goes in the same job, so no connection can start the server again.
    const problem = await steps([['stop', ...units]])
    if (problem) return problem
    const names = units.length > 1 ? `${units.slice(0, -1).join(', ')} and ${units.at(-1)}` : SERVER_UNIT
    return {
      success: true,
      platform: PLATFORM,
      message: `Stopped ${names}.`,
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
    // PartOf= restarts a running watchdog with the server; a stopped one is started after it. The
    // socket stays open through the restart, so connections wait for the new server.
    const problem = await steps([
      ...resetFailed(ready.units, [...units, SOCKET_UNIT]),
      ['restart', NO_BLOCK, SERVER_UNIT],
      ...(ready.watchdog ? [['start', NO_BLOCK, WATCHDOG_UNIT]] : []),
    ])
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
    if (!Object.values(unitFile).some((file) => existsSync(file))) return notInstalled('show logs of')
    return readJournal(ctx, options)
  }

  return {platform: PLATFORM, plan, install, uninstall, status: () => systemdStatus(ctx, systemctl), start, stop, restart, logs}
}
