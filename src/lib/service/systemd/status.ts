import {readFileSync} from 'node:fs'

import {EXIT_CONFIG} from '../../errors.js'
import {NAMES, type Paths, pathsFor, serverUrl} from '../../paths.js'
import {readPid} from '../../pidfile.js'
import {isAlive} from '../../procs.js'
import {staleWarnings} from '../stale.js'
import {formatUptime, versionDriftWarning, versionLine} from '../status-lines.js'
import type {ServiceContext, StatusResult, UnitStatus} from '../types.js'
import {installedHealth, isListenablePort, portConflictLines, portConflictWarning} from '../verify.js'
import {journalTail} from './journal.js'
import {portOwner} from './port-owner.js'
import {exitedWithConfigError, mainPidOf, orphaned, type ShowAnswer, type ShownUnit, stateText, type Systemctl} from './systemctl.js'
import {execStartLine, nodeDirOf, readUnitCommand, SERVER_UNIT, SOCKET_UNIT, WATCHDOG_UNIT} from './unit.js'
import {wslNote} from './wsl.js'

const PLATFORM = 'linux'

/** A file's text, or undefined when it cannot be read. */
export function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
}

/** What systemd answers for units it has never loaded: both not found and inactive. */
const NEVER_LOADED: ShowAnswer = {
  units: Object.fromEntries([SERVER_UNIT, WATCHDOG_UNIT, SOCKET_UNIT].map((unit) => [unit, {LoadState: 'not-found', ActiveState: 'inactive'}])),
}

/** How to get out of a start limit: systemd refuses both units until their failed state is forgotten. */
function startLimitLines(): string[] {
  return [
    `  Recover: ${NAMES.bin} service start (it forgets the failed state of both units first),`,
    `  or: systemctl --user reset-failed ${SERVER_UNIT} ${SOCKET_UNIT}, then systemctl --user start ${SERVER_UNIT}`,
  ]
}

/**
 * What status says of a failed socket: a port that was taken when it
 * started (Result=resources), named with its owner where it can be seen;
 * the server's start limit, which takes the socket down with it; anything
 * else with where to look.
 */
function socketFailure(socket: ShownUnit, target: {host: string; port: number} | undefined, crashLog: string): string {
  if (socket.Result === 'resources' && target) {
    const [first, ...rest] = portConflictLines('Warning:', target, portOwnerCommand, portOwner(target.port))
    return [`${first} (${SOCKET_UNIT} failed: resources)`, ...rest, `  Then: ${NAMES.bin} service start`].join('\n')
  }

  if (socket.Result === 'service-start-limit-hit' || socket.Result === 'trigger-limit-hit') {
    return [`Warning: ${SOCKET_UNIT} failed (${socket.Result}): the server crashed too often, so systemd closed the port.`, `  Logs: ${NAMES.bin} service logs, and ${crashLog}`, ...startLimitLines()].join(
      '\n',
    )
  }

  return [`Warning: ${SOCKET_UNIT} failed (${socket.Result ?? 'unknown reason'}).`, `  Logs: ${NAMES.bin} service logs`, `  After fixing the cause: ${NAMES.bin} service start`].join('\n')
}

/** Whether the PID file of the server or of the watchdog names a live process. */
function ourProcessRuns(paths: Paths): boolean {
  return [paths.serverPid, paths.watchdogPid].some((file) => {
    const pid = readPid(file)
    return pid !== undefined && isAlive(pid)
  })
}

/** The command that names the program listening on a TCP port, on Linux. */
export function portOwnerCommand(port: number): string {
  return `ss -ltnp 'sport = :${port}'`
}

function describe(label: string, unit: string, status: UnitStatus, shown: ShownUnit): string {
  if (!status.installed) return `${label} not installed (${unit})`
  if (status.state === 'inactive') return `${label} stopped (${unit})`
  const sub = shown.SubState && shown.SubState !== status.state ? ` (${shown.SubState})` : ''
  const pid = status.pid ? `, PID ${status.pid}` : ''
  return `${label} ${status.state}${sub}${pid} (${unit})`
}

/** Whether lingering is on for `user`, or undefined where loginctl cannot tell (no logind, no such user). */
async function lingerOf(ctx: ServiceContext): Promise<boolean | undefined> {
  const answer = await ctx.exec('loginctl', ['show-user', ctx.user, '--property=Linger', '--value'], {env: ctx.env})
  const value = answer.stdout.trim()
  return answer.code === 0 && (value === 'yes' || value === 'no') ? value === 'yes' : undefined
}

/**
 * The state of the installed units, for `service status`. Exits 0 whenever
 * the state could be read.
 *
 * 1. Reads the unit files, then starts `systemctl --user show` of both
 *    units, and `loginctl` for lingering, at once, and asks the server's
 *    health while they run (status is run often and must be quick). With
 *    no unit file and no server or watchdog of ours running, it asks
 *    systemd nothing: not installed.
 * 2. Warnings that come from the unit files alone (a deprecated binary, an
 *    executable or Node folder that has gone) are shown even when the
 *    manager cannot be reached.
 * 3. From systemd's answer: each unit's state, a unit systemd cannot load or
 *    whose file is gone, a failed unit, and a configuration error (exit
 *    status 78) with the line to fix.
 * 4. From the health answer: version drift between the running server and
 *    this CLI, uptime, and, for a server that is not running, another
 *    program holding its port.
 */
export async function systemdStatus(ctx: ServiceContext, systemctl: Systemctl): Promise<StatusResult> {
  const paths = pathsFor(ctx.home, ctx.env)
  const unitFile = {[SERVER_UNIT]: paths.systemdServerUnit, [WATCHDOG_UNIT]: paths.systemdWatchdogUnit}
  const texts = {[SERVER_UNIT]: readText(paths.systemdServerUnit), [WATCHDOG_UNIT]: readText(paths.systemdWatchdogUnit)}
  const socketText = readText(paths.systemdSocketUnit)
  const anyFile = texts[SERVER_UNIT] !== undefined || texts[WATCHDOG_UNIT] !== undefined || socketText !== undefined
  // With no unit file and no server or watchdog of ours running (a unit whose
  // file was deleted would still run one), systemd has nothing of ours to report.
  const showing = anyFile || ourProcessRuns(paths) ? systemctl.show() : Promise.resolve(NEVER_LOADED)
  const lingering = anyFile ? lingerOf(ctx) : Promise.resolve(undefined)
  const commands = Object.fromEntries(Object.entries(texts).map(([unit, text]) => [unit, text === undefined ? undefined : readUnitCommand(text)]))
  const serverCommand = commands[SERVER_UNIT]
  const healthUrl = serverCommand && `${serverUrl(serverCommand.host, serverCommand.port)}/api/health`
  const healthAnswer = healthUrl ? installedHealth(healthUrl, serverCommand.port) : undefined
  const warnings = staleWarnings(
    Object.entries(texts)
      .filter((entry): entry is [string, string] => entry[1] !== undefined)
      .map(([unit, text]) => ({text, program: commands[unit]?.argv[0], nodeDir: nodeDirOf(commands[unit]?.path)})),
  )
  const notes = wslNote(ctx)

  const answer = await showing
  if ('problem' in answer) {
    const unread = (unit: string): UnitStatus => ({installed: texts[unit] !== undefined, state: texts[unit] === undefined ? 'not-installed' : 'unknown'})
    return {
      success: !anyFile,
      platform: PLATFORM,
      message: anyFile ? 'Cannot read the service state: the systemd user manager is not reachable.' : 'amplifier-distro service is not installed.',
      details: ['Platform: linux (systemd user units)', ...answer.problem, ...notes],
      installed: anyFile,
      server: unread(SERVER_UNIT),
      watchdog: unread(WATCHDOG_UNIT),
      socket: {installed: socketText !== undefined, state: socketText === undefined ? 'not-installed' : 'unknown'},
      health: null,
      warnings,
      cliVersion: ctx.version,
    }
  }

  const shown = answer.units
  const unitStatus = (unit: string): UnitStatus => {
    const installed = texts[unit] !== undefined && shown[unit].LoadState !== 'not-found'
    const pid = mainPidOf(shown[unit])
    return {installed, state: installed ? (shown[unit].ActiveState ?? 'unknown') : 'not-installed', ...(installed && pid ? {pid} : {})}
  }

  const server = unitStatus(SERVER_UNIT)
  const watchdog = unitStatus(WATCHDOG_UNIT)
  const socketShown = shown[SOCKET_UNIT] ?? {}
  const socketInstalled = socketText !== undefined && socketShown.LoadState !== 'not-found'
  const socket: UnitStatus = {installed: socketInstalled, state: socketInstalled ? (socketShown.ActiveState ?? 'unknown') : 'not-installed'}
  const problems: string[] = []
  if (texts[SERVER_UNIT] !== undefined && socketText === undefined && shown[SERVER_UNIT].LoadState === 'loaded') {
    problems.push(
      [
        `Warning: installed without ${SOCKET_UNIT}, so connections are refused while the server restarts.`,
        `  For zero-downtime restarts, run install again: ${NAMES.bin} service install${serverCommand ? ` --host ${serverCommand.host} --port ${serverCommand.port}` : ''}`,
      ].join('\n'),
    )
  }

  if (socketText !== undefined && socketShown.LoadState !== undefined && socketShown.LoadState !== 'loaded') {
    problems.push(
      [`Warning: systemd reports ${SOCKET_UNIT} as ${socketShown.LoadState}: it cannot use ${paths.systemdSocketUnit}.`, `  Re-run: ${NAMES.bin} service install`].join('\n'),
    )
  }

  if (socketShown.ActiveState === 'failed') problems.push(socketFailure(socketShown, serverCommand, paths.crashLog))
  for (const unit of [SERVER_UNIT, WATCHDOG_UNIT]) {
    const state = shown[unit]
    const text = texts[unit]
    if (text !== undefined && state.LoadState !== 'loaded') {
      problems.push(
        [`Warning: systemd reports ${unit} as ${state.LoadState ?? 'unknown'}: it cannot use ${unitFile[unit]}.`, `  Re-run: ${NAMES.bin} service install`].join('\n'),
      )
    }

    if (text === undefined && orphaned(state, unitFile[unit])) {
      problems.push([`Warning: ${unit} is ${state.ActiveState} but its unit file ${unitFile[unit]} is gone.`, `  Run: ${NAMES.bin} service uninstall`].join('\n'))
    }

    if (state.ActiveState !== 'failed') continue
    const exec = text === undefined ? undefined : execStartLine(text)
    if (exitedWithConfigError(state) && exec) {
      const said = (await journalTail(ctx, unit, 1))[0]
      problems.push(
        [
          `Warning: ${unit} exited with status ${EXIT_CONFIG}: its command line or configuration can never work, so systemd does not restart it.`,
          ...(said ? [`  It said: ${said}`] : []),
          `  The line to fix: ${unitFile[unit]}, line ${exec.line}: ${exec.text}`,
          `  Then: ${NAMES.bin} service restart (or re-run ${NAMES.bin} service install, which writes the line anew)`,
        ].join('\n'),
      )
      continue
    }

    problems.push(
      [
        `Warning: ${unit} has failed (${state.Result ?? 'unknown reason'}); systemd will not start it again by itself.`,
        `  Logs: ${NAMES.bin} service logs, and ${paths.crashLog}`,
        ...(state.Result === 'start-limit-hit' ? startLimitLines() : [`  After fixing the cause: ${NAMES.bin} service start`]),
      ].join('\n'),
    )
  }

  let health: StatusResult['health'] = null
  if (server.installed && serverCommand && healthUrl && healthAnswer) {
    const answer = await healthAnswer
    const body = answer.healthy ? (answer.body ?? {}) : {}
    health = {url: healthUrl, healthy: answer.healthy, ...(answer.reason ? {reason: answer.reason} : {}), ...body}
    // Our server is not running, yet something accepts connections on its port: that is why it cannot start
    // (unless it is our own socket listening, or systemd already named the port conflict).
    if (server.state !== 'active' && socket.state !== 'active' && socketShown.Result !== 'resources' && isListenablePort(serverCommand.port)) {
      const {acceptsConnections} = await import('../../port-probe.js')
      if (await acceptsConnections(serverCommand.host, serverCommand.port)) problems.unshift(portConflictWarning(serverCommand, portOwnerCommand, portOwner(serverCommand.port)))
    }
  }

  const drift = health?.version === undefined ? undefined : versionDriftWarning(health.version, ctx.version)
  if (drift) problems.push(drift)

  const linger = await lingering
  const installed = server.installed || watchdog.installed
  const details = [
    'Platform: linux (systemd user units)',
    describe('Server:  ', SERVER_UNIT, server, shown[SERVER_UNIT]),
    describe('Watchdog:', WATCHDOG_UNIT, watchdog, shown[WATCHDOG_UNIT]),
    socketInstalled ? `Socket:   ${stateText(socketShown)} (${SOCKET_UNIT})` : `Socket:   not installed (${SOCKET_UNIT})`,
  ]
  if (server.installed && server.state === 'inactive') details.push(`Start it: ${NAMES.bin} service start`)
  if (health) details.push(`Health:   ${health.url} ${health.healthy ? 'healthy' : `not healthy (${health.reason})`}`)
  if (health?.version !== undefined) details.push(versionLine(health.version, ctx.version))
  if (health?.uptimeSeconds !== undefined) details.push(`Uptime:   ${formatUptime(health.uptimeSeconds)}`)
  if (installed) {
    if (linger === true) details.push('Linger:   on (the service runs without a login session, and starts at boot)')
    if (linger === false) {
      details.push(
        'Linger:   off (the service runs only while you are logged in)',
        `  To keep it running after logout and start it at boot: loginctl enable-linger ${ctx.user} (with sudo if that is refused)`,
      )
    }

    details.push(`Logs:     ${NAMES.bin} service logs`)
  } else {
    details.push(`Install it: ${NAMES.bin} service install`)
  }

  return {
    success: true,
    platform: PLATFORM,
    message: installed ? 'amplifier-distro service is installed.' : 'amplifier-distro service is not installed.',
    details: [...details, ...notes],
    installed,
    server,
    watchdog,
    socket,
    health,
    warnings: [...problems, ...warnings],
    cliVersion: ctx.version,
    ...(installed && linger !== undefined ? {linger} : {}),
  }
}
