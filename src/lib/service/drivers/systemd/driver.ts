import {existsSync} from 'node:fs'
import {isIP} from 'node:net'
import {join} from 'node:path'

import {UserError} from '../../../errors.js'
import {commandText, removeExisting, removeFile, writeFilesAtomically} from '../../../files.js'
import {NAMES, pathsFor} from '../../../paths.js'
import type {Definition, Driver, DriverContext, Inspection, JobState, PlannedCommand, Role, SocketState} from '../../driver.js'
import {isAlive} from '../../../process/procs.js'
import {readText} from '../../stale.js'
import type {LogsOptions, PlannedFile, UnitSpec} from '../../types.js'
import {journalTail, readJournal} from './journal.js'
import {portOwner} from './port-owner.js'
import {createSystemctl, exitedWithConfigError, firstLine, mainPidOf, orphaned, type ShownUnit, stateText} from './systemctl.js'
import {
  execStartLine,
  nodeDirOf,
  readListenStream,
  readUnitCommand,
  renderServerUnit,
  renderSocketUnit,
  renderWatchdogUnit,
  SERVER_UNIT,
  SOCKET_UNIT,
  WATCHDOG_UNIT,
} from './unit.js'

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

/** The conditions of the install steps that run only sometimes. */
const MOVING = 'when the socket listens on another address'
const MIGRATING = 'when the server runs without the socket, as an older install has it'

/** Running in systemd's sense: started or on its way up or down (a failed or stopped unit is not). */
function running(unit: ShownUnit): boolean {
  return ['active', 'activating', 'reloading', 'deactivating'].includes(unit.ActiveState ?? '')
}

/**
 * The socket unit's `systemctl show` answer in the driver interface's
 * terms: `resources` is a port another program held when it started;
 * `service-start-limit-hit` the server's start limit, which took it down.
 */
export function socketState(unit: ShownUnit, file: string): SocketState {
  const state = unit.ActiveState ?? 'unknown'
  const failed = state === 'failed'
  return {
    name: SOCKET_UNIT,
    file,
    installed: existsSync(file),
    held: unit.LoadState === 'not-found' || unit.LoadState === undefined ? 'not-loaded' : 'loaded',
    state,
    detail: stateText(unit),
    running: running(unit),
    ...(unit.Listen && state === 'active' ? {listen: unit.Listen} : {}),
    ...(failed ? {failure: unit.Result ?? 'unknown reason'} : {}),
    portTaken: failed && unit.Result === 'resources',
    startLimit: failed && (unit.Result === 'service-start-limit-hit' || unit.Result === 'trigger-limit-hit'),
    ...(existsSync(file) && unit.LoadState !== undefined && unit.LoadState !== 'loaded' ? {unusable: unit.LoadState} : {}),
  }
}

/** Resolves once `pid` has exited (its port is then free), or after 5 s. */
async function gone(pid: number): Promise<void> {
  const until = performance.now() + 5000
  while (isAlive(pid) && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 2))
}

/**
 * The IP address the socket unit listens on for `host`: an address as it
 * is, a host name resolved now (systemd's `ListenStream=` takes no names),
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
    ...(state === 'failed' ? {failure: unit.Result ?? 'unknown reason', startLimit: unit.Result === 'start-limit-hit'} : {}),
  }
}

/** True when this process is the main process of one of our units: systemd sets SYSTEMD_EXEC_PID to the PID it started, and a shell started from some unit passes its own on. */
export function startedBy(env: NodeJS.ProcessEnv, pid: number): boolean {
  return env.SYSTEMD_EXEC_PID === String(pid)
}

/**
 * The systemd driver: three user units under `~/.config/systemd/user`
 * (`$XDG_CONFIG_HOME` when set), driven with `systemctl --user`, their
 * output read from the journal. The server role is the server unit and its
 * socket (systemd holds the port, so connections wait instead of being
 * refused while the server restarts); only the server and the watchdog are
 * enabled, and the server's `Requires=` starts the socket (see
 * renderSocketUnit).
 */
export function createDriver(ctx: DriverContext): Driver {
  const paths = pathsFor(ctx.home, ctx.env)
  const unitFile: Record<Role, string> = {server: paths.systemdServerUnit, watchdog: paths.systemdWatchdogUnit}
  const systemctl = createSystemctl(ctx)
  const units = (roles: readonly Role[]) => roles.map((role) => UNIT[role])
  /** The socket unit when the server role is among `roles` and systemd has it loaded (a socket-less install has none). */
  const socketOf = (roles: readonly Role[], jobs: Record<Role, JobState>) => {
    const socket = jobs.server.socket
    return roles.includes('server') && socket?.held === 'loaded' ? socket : undefined
  }

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
    const socket = socketOf(roles, jobs)
    const names = [...units(known), ...(socket && socket.unusable === undefined ? [socket.name] : [])]
    if (names.length > 0) await run('reset-failed', ...names)
  }

  /** A server that runs from an install without the socket, whose new definition has one. */
  function migrating(jobs: Record<Role, JobState>): boolean {
    return jobs.server.running && jobs.server.pid !== undefined && jobs.server.socket?.held !== 'loaded' && existsSync(paths.systemdSocketUnit)
  }

  /**
   * A socket that listens elsewhere than its new unit says keeps listening
   * there until it is stopped: stopping it (which stops the server too) lets
   * the `enable --now` of the server start it on the new address.
   */
  function socketMoves(jobs: Record<Role, JobState>): boolean {
    const listen = jobs.server.socket?.listen
    const text = readText(paths.systemdSocketUnit)
    const wanted = text === undefined ? undefined : readListenStream(text)
    return listen !== undefined && wanted !== undefined && listen !== `${wanted.replaceAll('%%', '%')} (Stream)`
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
    killDownServer: true,

    startLimitRecovery: `systemctl --user reset-failed ${SERVER_UNIT} ${SOCKET_UNIT}, then systemctl --user start ${SERVER_UNIT}`,

    jobName: (role) => UNIT[role],
    files: (role) => (role === 'server' ? [unitFile.server, paths.systemdSocketUnit] : [unitFile[role]]),

    /** The units of `roles`, the server's socket last. */
    render(spec: UnitSpec, roles) {
      const files = roles.map((role) => ({path: unitFile[role], content: role === 'server' ? renderServerUnit(spec) : renderWatchdogUnit(spec)}))
      if (roles.includes('server')) files.push({path: paths.systemdSocketUnit, content: renderSocketUnit(spec, spec.address ?? spec.host)})
      return files
    },

    listenAddress,

    write(files: readonly PlannedFile[]) {
      writeFilesAtomically(files)
    },

    remove: (role) => removeExisting(driver.files(role)),

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
      const server = {...jobState(answer.units[SERVER_UNIT], unitFile.server), socket: socketState(answer.units[SOCKET_UNIT], paths.systemdSocketUnit)}
      return {jobs: {server, watchdog: jobState(answer.units[WATCHDOG_UNIT], unitFile.watchdog)}}
    },

    mainPid: (role) => systemctl.mainPid(UNIT[role]),
    // A failed socket (its port taken, or the server's start limit) holds the server back as well.
    gaveUp: async (role) => ((await systemctl.activeStates(...(role === 'server' ? [SERVER_UNIT, SOCKET_UNIT] : [UNIT[role]]))) ?? []).includes('failed'),

    loadPlan(roles) {
      const names = units(roles)
      return [
        {argv: [SYSTEMCTL, '--user', 'daemon-reload']},
        ...(roles.includes('server')
          ? [
              {argv: [SYSTEMCTL, '--user', 'stop', SOCKET_UNIT], when: MOVING},
              // The old server gives the port up at once (no drain) and the socket takes it as soon as it is
              // free, so connections queue instead of being refused; the server's restart takes the socket.
              {argv: [SYSTEMCTL, '--user', 'kill', '--signal=SIGKILL', '--kill-who=main', SERVER_UNIT], when: MIGRATING},
              {argv: [SYSTEMCTL, '--user', 'start', SOCKET_UNIT], when: MIGRATING},
            ]
          : []),
        // Re-running install is how people upgrade: units that already run pick up the new definition.
        {argv: [SYSTEMCTL, '--user', 'try-restart', NO_BLOCK, ...names]},
        ...names.map((unit) => ({argv: [SYSTEMCTL, '--user', 'enable', '--now', NO_BLOCK, unit]})),
        {argv: ['loginctl', 'enable-linger', ctx.user]},
      ]
    },

    unloadPlan: (role): PlannedCommand[] => [{argv: [SYSTEMCTL, '--user', 'disable', '--now', UNIT[role]]}],

    async load(roles, jobs) {
      await resetFailed(roles, jobs)
      const notes: string[] = []
      const applies: Record<string, boolean> = {[MOVING]: socketMoves(jobs), [MIGRATING]: migrating(jobs)}
      const oldServer = jobs.server.pid
      for (const {argv, when} of driver.loadPlan(roles)) {
        if (when !== undefined && !applies[when]) continue
        const answer = await ctx.exec(argv[0], argv.slice(1), {env: ctx.env})
        // A server that exited meanwhile has nothing to kill; the restart below starts the new one either way.
        if (argv[2] === 'kill') {
          if (answer.code === 0 && oldServer) await gone(oldServer)
          continue
        }

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
      // A unit that is not running (or that systemd could not load) has nothing to stop. The server's socket
      // stops in the same job, which closes the port: no connection can start the server again meanwhile.
      const socket = job.socket && (job.socket.running || job.socket.failure !== undefined) ? [job.socket.name] : []
      const stopping = [...(job.running || job.gaveUp ? [unit] : []), ...socket]
      // The socket was never enabled.
      const steps = [...(stopping.length > 0 ? [['stop', ...stopping]] : []), ...(file ? [['disable', unit]] : [])]
      for (const step of steps) await run(...step)
      // disable removes the symlink; a unit file deleted by hand leaves it behind.
      removeFile(join(paths.systemdUserDir, 'default.target.wants', unit))
      if (stopping.length === 1 && stopping[0] === unit && file) return `Stopped and disabled ${unit}`
      const done = [...(stopping.length > 0 ? [`stopped ${stopping.join(' and ')}`] : []), ...(file ? [`disabled ${unit}`] : [])].join('; ')
      return `${done.charAt(0).toUpperCase()}${done.slice(1)}`
    },

    async forget(roles) {
      await systemctl.run('daemon-reload')
      // Forgets a failed state; answers "not loaded" for units that are already gone, which is fine.
      await systemctl.run('reset-failed', ...units(roles), ...(roles.includes('server') ? [SOCKET_UNIT] : []))
    },

    async start(roles, jobs) {
      await resetFailed(roles, jobs)
      // The server's Requires= starts the socket first.
      await run('start', NO_BLOCK, ...units(roles))
    },

    async stop(roles, jobs) {
      // PartOf= takes the watchdog along with the server; naming it too also stops a watchdog whose server is already down.
      // The socket goes in the same job, so no connection can start the server again.
      const socket = socketOf(roles, jobs)
      await run('stop', ...units(roles), ...(socket ? [socket.name] : []))
    },

    async restart(roles, jobs) {
      await resetFailed(roles, jobs)
      // PartOf= restarts a running watchdog with the server; a stopped one is started after it. The
      // socket stays open through the restart, so connections wait for the new server.
      if (roles.includes('server')) await run('restart', NO_BLOCK, SERVER_UNIT)
      if (roles.includes('watchdog')) await run('start', NO_BLOCK, WATCHDOG_UNIT)
    },

    logTail: (role, lines) => journalTail(ctx, UNIT[role], lines),
    logs: (options: LogsOptions) => readJournal(ctx, options),
    portOwnerCommand: (port) => `ss -ltnp 'sport = :${port}'`,
    portOwner: (port) => portOwner(port),

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
