import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {UserError} from '../errors.js'
import {NAMES, pathsFor, serverUrl} from '../paths.js'
import {commandText, removeFile, writeFilesAtomically} from '../files.js'
import {makeUnitSpec} from './spec.js'
import {staleWarnings} from './stale.js'
import {nodeDirOf, readUnitCommand, renderServerUnit, renderWatchdogUnit, SERVER_UNIT, WATCHDOG_UNIT} from './systemd-unit.js'
import type {Backend, ExecResult, InstallOptions, InstallPlan, PlannedFile, ServiceContext, ServiceResult, StatusResult, UnitSpec, UnitStatus} from './types.js'

const PLATFORM = 'linux'

const WSL_HINT = 'On WSL2, enable systemd first: put "[boot]" and "systemd=true" in /etc/wsl.conf, then run "wsl --shutdown" from Windows.'

function failed(message: string, details: string[] = []): ServiceResult {
  return {success: false, platform: PLATFORM, message, details}
}

function firstLine(result: ExecResult): string {
  return (result.stderr.trim() || result.stdout.trim()).split('\n')[0] ?? ''
}

/**
 * Why a server that is not running cannot start: the usual cause of a crash
 * loop is another program holding its port.
 */
export function portConflictWarning(host: string, port: number): string {
  return [
    `Warning: ${serverUrl(host, port).replace('http://', '')} is in use by another program, so the server cannot listen there.`,
    `  See which program: ss -ltnp 'sport = :${port}'`,
    `  Stop that program, or install on another port: ${NAMES.bin} service install --port <port>`,
  ].join('\n')
}

/** One unit's state as `systemctl --user show` reports it. */
interface ShownUnit {
  LoadState?: string
  ActiveState?: string
  SubState?: string
  MainPID?: string
  Result?: string
  FragmentPath?: string
}

function parseShow(stdout: string): ShownUnit[] {
  return stdout
    .trim()
    .split(/\n\s*\n/)
    .map((block) => {
      const unit: Record<string, string> = {}
      for (const line of block.split('\n')) {
        const eq = line.indexOf('=')
        if (eq > 0) unit[line.slice(0, eq)] = line.slice(eq + 1)
      }

      return unit as ShownUnit
    })
}

/**
 * True for a unit that still runs (or failed) although its file is gone:
 * deleted without a daemon-reload (systemd still names our file), or
 * reloaded while it runs (systemd then names no file at all). A unit loaded
 * from another folder is someone else's and is left alone.
 */
function orphaned(unit: ShownUnit, file: string): boolean {
  const ours = unit.FragmentPath === file || (unit.LoadState === 'not-found' && unit.FragmentPath === '')
  return ours && !existsSync(file) && unit.ActiveState !== undefined && unit.ActiveState !== 'inactive'
}

/**
 * The systemd backend: two user units under `~/.config/systemd/user`
 * (`$XDG_CONFIG_HOME` when set), driven with `systemctl --user`.
 */
export function createSystemdBackend(ctx: ServiceContext): Backend {
  const paths = pathsFor(ctx.home, ctx.env)
  const unitFile = {[SERVER_UNIT]: paths.systemdServerUnit, [WATCHDOG_UNIT]: paths.systemdWatchdogUnit}

  const systemctl = (...args: string[]) => ctx.exec('systemctl', ['--user', ...args], {env: ctx.env})

  /** Why the user manager cannot be used, from a failed `systemctl --user` answer. */
  function problemOf(answer: ExecResult): string[] {
    if (answer.code === 127) return ['systemctl was not found on PATH: this system does not run systemd.', WSL_HINT]
    return [`systemctl --user answered: ${firstLine(answer)}`, 'amp-distro service needs a running systemd user manager (systemctl --user).', WSL_HINT]
  }

  /** Why the user manager cannot be used, or undefined when it answers. */
  async function managerProblem(): Promise<string[] | undefined> {
    const answer = await systemctl('show', '--property=Version', '--value')
    return answer.code === 0 ? undefined : problemOf(answer)
  }

  /** Both units as the manager sees them; a failed answer means the manager cannot be reached. */
  async function show(): Promise<{units: Record<string, ShownUnit>} | {problem: string[]}> {
    const answer = await systemctl('show', '--property=LoadState,ActiveState,SubState,MainPID,Result,FragmentPath', SERVER_UNIT, WATCHDOG_UNIT)
    if (answer.code !== 0) return {problem: problemOf(answer)}
    const [server, watchdog] = parseShow(answer.stdout)
    return {units: {[SERVER_UNIT]: server ?? {}, [WATCHDOG_UNIT]: watchdog ?? {}}}
  }

  function plan(spec: UnitSpec, options: {watchdog: boolean}): InstallPlan {
    const units = options.watchdog ? [SERVER_UNIT, WATCHDOG_UNIT] : [SERVER_UNIT]
    const files: PlannedFile[] = [{path: paths.systemdServerUnit, content: renderServerUnit(spec)}]
    if (options.watchdog) files.push({path: paths.systemdWatchdogUnit, content: renderWatchdogUnit(spec)})
    return {
      files,
      commands: [
        ['systemctl', '--user', 'daemon-reload'],
        // Re-running install is how people upgrade: units that already run pick up the new definition.
        ['systemctl', '--user', 'try-restart', ...units],
        ...units.map((unit) => ['systemctl', '--user', 'enable', '--now', unit]),
        ['loginctl', 'enable-linger', ctx.user],
      ],
    }
  }

  /** Stops, disables and removes the watchdog unit (install --no-watchdog over an install that had one). */
  function dropWatchdogCommands(): string[][] {
    return existsSync(paths.systemdWatchdogUnit) ? [['systemctl', '--user', 'disable', '--now', WATCHDOG_UNIT]] : []
  }

  async function install(options: InstallOptions): Promise<ServiceResult> {
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
      for (const file of planned.files) {
        details.push(`write ${file.path} (mode 0644):`, ...file.content.trimEnd().split('\n').map((line) => `  ${line}`))
      }

      for (const command of drop) details.push(`run: ${commandText(command)}`, `remove: ${paths.systemdWatchdogUnit}`)

      for (const command of planned.commands) details.push(`run: ${commandText(command)}`)
      return {success: true, platform: PLATFORM, message: 'Dry run: amplifier-distro service install', details}
    }

    // Check for the manager before touching anything: `enable --now` without one still creates symlinks.
    const problem = await managerProblem()
    if (problem) return failed('systemd user manager is not reachable; nothing was installed.', problem)

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
    for (const command of planned.commands) {
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
        `Inspect: systemctl --user status ${NAMES.systemdUnit}`,
        `Remove the half-finished install: ${NAMES.bin} service uninstall`,
      ])
    }

    const unitNames = planned.files.map((file) => file.path.split('/').at(-1)).join(' and ')
    return {
      success: true,
      platform: PLATFORM,
      message: `Installed ${unitNames} (systemd user ${planned.files.length > 1 ? 'units' : 'unit'}).`,
      details: [
        ...planned.files.map((file) => `Wrote ${file.path}`),
        `Runs: ${spec.bin}`,
        `Serves: ${serverUrl(spec.host, spec.port)}`,
        `Status: ${NAMES.bin} service status`,
        ...notes,
      ],
    }
  }

  async function uninstall(): Promise<ServiceResult> {
    const files = {[SERVER_UNIT]: existsSync(paths.systemdServerUnit), [WATCHDOG_UNIT]: existsSync(paths.systemdWatchdogUnit)}
    const notInstalled: ServiceResult = {
      success: true,
      platform: PLATFORM,
      message: 'amplifier-distro service is not installed; nothing to do.',
      details: [],
    }
    const answer = await show()
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
      const running = shown[unit].ActiveState !== undefined && shown[unit].ActiveState !== 'inactive'
      const steps = [...(running ? [['stop', unit]] : []), ...(files[unit] ? [['disable', unit]] : [])]
      for (const step of steps) {
        const answer = await systemctl(...step)
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

    await systemctl('daemon-reload')
    // Forgets a failed state; answers "not loaded" for units that are already gone, which is fine.
    await systemctl('reset-failed', ...units)
    details.push(`Data in ${paths.amplifierHome} was left in place.`)
    return {success: true, platform: PLATFORM, message: 'Uninstalled amplifier-distro service.', details}
  }

  function readInstalled(file: string): string | undefined {
    try {
      return readFileSync(file, 'utf8')
    } catch {
      return undefined
    }
  }

  function describe(label: string, unit: string, status: UnitStatus, shown: ShownUnit): string {
    if (!status.installed) return `${label} not installed (${unit})`
    const sub = shown.SubState && shown.SubState !== status.state ? ` (${shown.SubState})` : ''
    const pid = status.pid ? `, PID ${status.pid}` : ''
    return `${label} ${status.state}${sub}${pid} (${unit})`
  }

  async function status(): Promise<StatusResult> {
    // One `show` both proves the manager answers and reads the units. It starts first and runs while the
    // unit files are read and the server's health is asked: status is run often and must be quick.
    const showing = show()
    const texts = {[SERVER_UNIT]: readInstalled(paths.systemdServerUnit), [WATCHDOG_UNIT]: readInstalled(paths.systemdWatchdogUnit)}
    const anyFile = texts[SERVER_UNIT] !== undefined || texts[WATCHDOG_UNIT] !== undefined
    const unread = (unit: string): UnitStatus => ({installed: texts[unit] !== undefined, state: texts[unit] === undefined ? 'not-installed' : 'unknown'})
    const unreadable = (success: boolean, message: string, details: string[]): StatusResult => ({
      success,
      platform: PLATFORM,
      message,
      details: ['Platform: linux (systemd user units)', ...details],
      installed: anyFile,
      server: unread(SERVER_UNIT),
      watchdog: unread(WATCHDOG_UNIT),
      health: null,
      warnings: [],
    })

    const commands = Object.fromEntries(Object.entries(texts).map(([unit, text]) => [unit, text === undefined ? undefined : readUnitCommand(text)]))
    const serverCommand = commands[SERVER_UNIT]
    const healthUrl = serverCommand && `${serverUrl(serverCommand.host, serverCommand.port)}/api/health`
    // Reported only for a server unit systemd has loaded; node:http loads only when there is a server to ask.
    const healthAnswer = healthUrl && import('../health.js').then(({checkHealth}) => checkHealth(healthUrl, 2000))

    const answer = await showing
    if ('problem' in answer) {
      return anyFile
        ? unreadable(false, 'Cannot read the service state: the systemd user manager is not reachable.', answer.problem)
        : unreadable(true, 'amplifier-distro service is not installed.', answer.problem)
    }

    const shown = answer.units

    const unitStatus = (unit: string): UnitStatus => {
      const s = shown[unit]
      const installed = texts[unit] !== undefined && s.LoadState !== 'not-found'
      const pid = Number(s.MainPID)
      return {installed, state: installed ? (s.ActiveState ?? 'unknown') : 'not-installed', ...(installed && pid > 0 ? {pid} : {})}
    }

    const server = unitStatus(SERVER_UNIT)
    const watchdog = unitStatus(WATCHDOG_UNIT)
    const warnings: string[] = []
    for (const unit of [SERVER_UNIT, WATCHDOG_UNIT]) {
      if (texts[unit] !== undefined && shown[unit].LoadState !== 'loaded') {
        warnings.push(
          [
            `Warning: systemd reports ${unit} as ${shown[unit].LoadState ?? 'unknown'}: it cannot use ${unitFile[unit]}.`,
            `  Re-run: ${NAMES.bin} service install`,
          ].join('\n'),
        )
      }

      if (texts[unit] === undefined && orphaned(shown[unit], unitFile[unit])) {
        warnings.push(
          [`Warning: ${unit} is ${shown[unit].ActiveState} but its unit file ${unitFile[unit]} is gone.`, `  Run: ${NAMES.bin} service uninstall`].join('\n'),
        )
      }

      if (shown[unit].ActiveState === 'failed') {
        const name = unit.replace(/\.service$/, '')
        warnings.push(
          [
            `Warning: ${unit} has failed (${shown[unit].Result ?? 'unknown reason'}); systemd will not start it again by itself.`,
            `  Logs: journalctl --user -u ${name}, and ${paths.crashLog}`,
            `  After fixing the cause: systemctl --user reset-failed ${name} && systemctl --user start ${name}`,
          ].join('\n'),
        )
      }
    }

    warnings.push(
      ...staleWarnings(
        Object.entries(texts)
          .filter((entry): entry is [string, string] => entry[1] !== undefined)
          .map(([unit, text]) => ({text, program: commands[unit]?.argv[0], nodeDir: nodeDirOf(commands[unit]?.path)})),
      ),
    )

    let health: StatusResult['health'] = null
    if (server.installed && serverCommand && healthUrl && healthAnswer) {
      const answer = await healthAnswer
      health = {url: healthUrl, healthy: answer.healthy, ...(answer.reason ? {reason: answer.reason} : {})}
      // Our server is not running, yet something accepts connections on its port: that is why it cannot start.
      if (server.state !== 'active') {
        const {acceptsConnections} = await import('../port-probe.js')
        if (await acceptsConnections(serverCommand.host, serverCommand.port)) warnings.unshift(portConflictWarning(serverCommand.host, serverCommand.port))
      }
    }

    const installed = server.installed || watchdog.installed
    const details = [
      'Platform: linux (systemd user units)',
      describe('Server:  ', SERVER_UNIT, server, shown[SERVER_UNIT]),
      describe('Watchdog:', WATCHDOG_UNIT, watchdog, shown[WATCHDOG_UNIT]),
    ]
    if (health) details.push(`Health:   ${health.url} ${health.healthy ? 'healthy' : `not healthy (${health.reason})`}`)
    if (!installed) details.push(`Install it: ${NAMES.bin} service install`)
    return {
      success: true,
      platform: PLATFORM,
      message: installed ? 'amplifier-distro service is installed.' : 'amplifier-distro service is not installed.',
      details,
      installed,
      server,
      watchdog,
      health,
      warnings,
    }
  }

  // Placeholders until the operations are implemented; they fail rather than pretend.
  const pending = async (): Promise<ServiceResult> => failed('not implemented')
  return {platform: PLATFORM, plan, install, uninstall, status, start: pending, stop: pending, restart: pending, logs: pending}
}
