import {EXIT_CONFIG} from '../errors.js'
import {NAMES, type Paths, pathsFor, serverUrl} from '../paths.js'
import {readPid} from '../process/pidfile.js'
import {isAlive} from '../process/procs.js'
import type {Service} from './core.js'
import {type Definition, type Driver, type Inspection, type JobState, type Role, ROLES, type SocketState} from './driver.js'
import {installedHealth, isListenablePort, portConflictLines, portConflictWarning, type ServerTarget} from './health-wait.js'
import {staleWarnings} from './stale.js'
import {formatUptime, versionDriftWarning, versionLine} from './status-lines.js'
import type {StatusResult, UnitStatus} from './types.js'
import {wslNote} from './wsl.js'

type Definitions = Record<Role, Definition | undefined>

/** A job the supervisor does not hold: what status reports when there is nothing to ask about. */
const NOT_LOADED: JobState = {held: 'not-loaded', state: 'not-loaded', summary: 'stopped', detail: 'not loaded', running: false, gaveUp: false, configError: false, orphaned: false}

/** Whether the PID file of the server or of the watchdog names a live process. */
function ourProcessRuns(paths: Paths): boolean {
  return [paths.serverPid, paths.watchdogPid].some((file) => {
    const pid = readPid(file)
    return pid !== undefined && isAlive(pid)
  })
}

const LABEL: Record<Role, string> = {server: 'Server:  ', watchdog: 'Watchdog:'}

/** One job as status reports it: installed when its definition is there, its state in the supervisor's word (`stopped` when the supervisor does not hold it). */
function unitStatus(definition: Definition | undefined, job: JobState): UnitStatus {
  if (!definition) return {installed: false, state: 'not-installed'}
  return {installed: true, state: job.held === 'not-loaded' ? 'stopped' : job.state, ...(job.pid ? {pid: job.pid} : {})}
}

/** The state next to the job's name: the supervisor's summary, `stopped` for a job it does not hold. */
const summaryOf = (job: JobState) => (job.held === 'not-loaded' ? 'stopped' : job.summary)

function describe(driver: Driver, role: Role, unit: UnitStatus, job: JobState): string {
  if (!unit.installed) return `${LABEL[role]} not installed (${driver.jobName(role)})`
  return `${LABEL[role]} ${summaryOf(job)}${unit.pid ? `, PID ${unit.pid}` : ''} (${driver.jobName(role)})`
}

/** Definitions that cannot be read as such, and drift between the installed definitions and this machine. */
function definitionWarnings(driver: Driver, definitions: Definitions): string[] {
  const present = ROLES.flatMap((role) => definitions[role] ?? [])
  return [
    ...present.flatMap((definition) =>
      definition.problem === undefined ? [] : [`Warning: ${definition.file} is not a readable ${driver.kind.file} (${definition.problem}).\n  Re-run: ${NAMES.bin} service install`],
    ),
    ...staleWarnings(present),
  ]
}

/** The warning for a job that exited with EXIT_CONFIG: what it said last, the line of its definition to fix, and how to have the supervisor read the fix. */
async function configErrorWarning(driver: Driver, role: Role, definition: Definition): Promise<string> {
  const said = (await driver.logTail(role, 1))[0]
  const mistake = driver.findMistake(definition)
  return [
    `Warning: ${driver.jobName(role)} exited with status ${EXIT_CONFIG}: its command line or configuration can never work${driver.configErrorNote}.`,
    ...(said ? [`  It said: ${said}`] : []),
    mistake
      ? `  The line to fix: ${definition.file}, line ${mistake.line}: ${mistake.text}${mistake.reason ? ` (${mistake.reason})` : ''}`
      : `  Fix: ${definition.file}`,
    `  Then: ${driver.reloadHint}`,
  ].join('\n')
}

/** How to get out of a start limit: the supervisor refuses the server until its failed state is forgotten. */
function startLimitLines(driver: Driver): string[] {
  return [
    `  Recover: ${NAMES.bin} service start (it forgets the failed state first)${driver.startLimitRecovery ? ',' : ''}`,
    ...(driver.startLimitRecovery ? [`  or: ${driver.startLimitRecovery}`] : []),
  ]
}

/**
 * What status says of the server's socket, where the supervisor holds one:
 * an install written before the socket existed (run install again), a
 * definition the supervisor cannot use, and a failed socket: a port another
 * program held when it started (named with its owner where it can be
 * seen), the server's start limit, which closed the port, or anything else
 * with where to look.
 */
function socketWarnings(driver: Driver, server: Definition | undefined, job: JobState, socket: SocketState, crashLog: string): string[] {
  const target = server?.target
  if (server && !socket.installed && job.held === 'loaded' && job.unusable === undefined) {
    const flags = target ? ` --host ${target.host} --port ${target.port}` : ''
    return [
      `Warning: installed without ${socket.name}, so connections are refused while the server restarts.\n  For zero-downtime restarts, run install again: ${NAMES.bin} service install${flags}`,
    ]
  }

  if (socket.installed && socket.unusable) {
    return [`Warning: ${driver.name} reports ${socket.name} as ${socket.unusable}: it cannot use ${socket.file}.\n  Re-run: ${NAMES.bin} service install`]
  }

  if (socket.failure === undefined) return []
  if (socket.portTaken && target) {
    const [first, ...rest] = portConflictLines('Warning:', target, (port) => driver.portOwnerCommand(port), driver.portOwner?.(target.port))
    return [[`${first} (${socket.name} failed: ${socket.failure})`, ...rest, `  Then: ${NAMES.bin} service start`].join('\n')]
  }

  if (socket.startLimit) {
    return [
      [
        `Warning: ${socket.name} failed (${socket.failure}): the server crashed too often, so ${driver.name} closed the port.`,
        `  Logs: ${NAMES.bin} service logs, and ${crashLog}`,
        ...startLimitLines(driver),
      ].join('\n'),
    ]
  }

  return [[`Warning: ${socket.name} failed (${socket.failure}).`, `  Logs: ${NAMES.bin} service logs`, `  After fixing the cause: ${NAMES.bin} service start`].join('\n')]
}

/** What the supervisor's answer tells beyond the state: a definition it cannot use, a job that runs without its file, a job it gave up. */
async function jobWarnings(driver: Driver, definitions: Definitions, jobs: Record<Role, JobState>, crashLog: string): Promise<string[]> {
  const warnings: string[] = []
  for (const role of ROLES) {
    const [definition, job, name] = [definitions[role], jobs[role], driver.jobName(role)]
    if (definition && job.unusable) {
      warnings.push(`Warning: ${driver.name} reports ${name} as ${job.unusable}: it cannot use ${definition.file}.\n  Re-run: ${NAMES.bin} service install`)
    }

    if (!definition && job.orphaned) {
      warnings.push(`Warning: ${name} is ${job.state} but its ${driver.kind.file} ${driver.files(role)[0]} is gone.\n  Run: ${NAMES.bin} service uninstall`)
    }

    if (job.warning) warnings.push([`Warning: ${job.warning[0]}`, ...job.warning.slice(1).map((line) => `  ${line}`)].join('\n'))
    if (!job.gaveUp) continue
    if (job.spawnFailed) {
      warnings.push([`Warning: ${name}: ${job.spawnFailed}.`, `  Then: ${driver.reloadHint}`].join('\n'))
      continue
    }

    if (job.configError && definition) {
      warnings.push(await configErrorWarning(driver, role, definition))
      continue
    }

    warnings.push(
      [
        `Warning: ${name} has failed (${job.failure ?? 'unknown reason'}); ${driver.name} will not start it again by itself.`,
        `  Logs: ${NAMES.bin} service logs, and ${crashLog}`,
        ...(job.startLimit ? startLimitLines(driver) : [`  After fixing the cause: ${NAMES.bin} service start`]),
      ].join('\n'),
    )
  }

  const socket = jobs.server.socket
  if (socket) warnings.push(...socketWarnings(driver, definitions.server, jobs.server, socket, crashLog))
  return warnings
}

/** The warning for a definition whose `--port` is no TCP port, before the supervisor has run the server with it: serve will refuse it. */
function unlistenablePortWarning(driver: Driver, definition: Definition, port: number): string {
  const mistake = driver.findMistake(definition)
  return [
    `Warning: ${definition.file} names port ${port}, which is not a TCP port (1-65535): the server exits with a configuration error (exit code ${EXIT_CONFIG}).`,
    mistake ? `  Fix line ${mistake.line}: ${mistake.text}` : `  Fix ${definition.file}`,
    `  Or write a new one: ${NAMES.bin} service install --port <port>`,
  ].join('\n')
}

/**
 * What the server's port tells: a port that is no TCP port, or another
 * program holding the port of a server that does not run (the usual reason
 * it cannot start). Nothing for a server that exited with a configuration
 * error: its warning names the cause.
 */
async function portWarnings({driver, effects}: Service, definition: Definition, target: ServerTarget, server: UnitStatus, job: JobState): Promise<string[]> {
  if (job.configError) return []
  if (!isListenablePort(target.port)) return [unlistenablePortWarning(driver, definition, target.port)]
  // Our own socket listening is not another program; a socket that failed for the port has named it already.
  if (server.pid !== undefined || job.socket?.state === 'active' || job.socket?.portTaken) return []
  if (!(await effects.probe(target.host, target.port))) return []
  return [portConflictWarning(target, (port) => driver.portOwnerCommand(port), driver.portOwner?.(target.port))]
}

/** The status of a supervisor that does not answer: a failure when something is installed, since its state cannot be read. */
function unreachableStatus({driver, ctx}: Service, definitions: Definitions, unreachable: string[]): StatusResult {
  const installed = ROLES.some((role) => definitions[role])
  const unread = (role: Role): UnitStatus => ({installed: definitions[role] !== undefined, state: definitions[role] ? 'unknown' : 'not-installed'})
  return {
    success: !installed,
    platform: driver.platform,
    message: installed ? `Cannot read the service state: the ${driver.manager} is not reachable.` : `${NAMES.serviceName} service is not installed.`,
    details: [`Platform: ${driver.platform} (${driver.kind.many})`, ...unreachable, ...wslNote(ctx)],
    installed,
    server: unread('server'),
    watchdog: unread('watchdog'),
    health: null,
    warnings: definitionWarnings(driver, definitions),
    cliVersion: ctx.version,
  }
}

/**
 * `service status`, for every supervisor. Exits 0 whenever the state could
 * be read.
 *
 * 1. Reads the definitions, then asks the supervisor about both jobs, the
 *    supervisor's notes (lingering) and the server's health at once (status
 *    is run often and must be quick). With no definition and no server or
 *    watchdog of ours running, it asks the supervisor nothing: not installed.
 * 2. Warnings from the definitions alone (unreadable, a deprecated binary,
 *    an executable or Node folder that has gone) are shown even when the
 *    supervisor does not answer.
 * 3. From the supervisor's answer: each job's state, a definition it cannot
 *    use, a job that runs without its file, a job it gave up, and a
 *    configuration error (exit status 78) with the line to fix.
 * 4. From the health answer and the port: version drift between the running
 *    server and this CLI, uptime, a port that is no TCP port, and another
 *    program holding the port of a server that is not running.
 */
export async function status(service: Service): Promise<StatusResult> {
  const {driver, ctx} = service
  const paths = pathsFor(ctx.home, ctx.env)
  const definitions: Definitions = {server: driver.read('server'), watchdog: driver.read('watchdog')}
  const anyFile = ROLES.some((role) => definitions[role])
  // A job whose file was deleted would still run a server or watchdog of ours.
  const inspecting: Promise<Inspection> = anyFile || ourProcessRuns(paths) ? driver.inspect() : Promise.resolve({jobs: {server: NOT_LOADED, watchdog: NOT_LOADED}})
  const noting = anyFile ? driver.statusNotes?.() : undefined
  const server = definitions.server
  const target = server?.target
  const healthUrl = target && `${serverUrl(target.host, target.port)}/api/health`
  const asking = healthUrl && target ? installedHealth(healthUrl, target.port, service.effects.check) : undefined

  const inspection = await inspecting
  if ('unreachable' in inspection) return unreachableStatus(service, definitions, inspection.unreachable)
  const {jobs} = inspection
  const units = {server: unitStatus(server, jobs.server), watchdog: unitStatus(definitions.watchdog, jobs.watchdog)}
  const warnings = await jobWarnings(driver, definitions, jobs, paths.crashLog)
  const details = [`Platform: ${driver.platform} (${driver.kind.many})`, ...ROLES.map((role) => describe(driver, role, units[role], jobs[role]))]
  const socket = jobs.server.socket
  const socketShown = socket?.installed === true && socket.held === 'loaded'
  if (socket) details.push(`Socket:   ${socketShown ? socket.detail : 'not installed'} (${socket.name})`)
  if (units.server.installed && summaryOf(jobs.server) === 'stopped') details.push(`Start it: ${NAMES.bin} service start`)

  let health: StatusResult['health'] = null
  if (server && target && healthUrl && asking) {
    const answer = await asking
    const body = answer.healthy ? (answer.body ?? {}) : {}
    health = {url: healthUrl, healthy: answer.healthy, ...(answer.reason ? {reason: answer.reason} : {}), ...body}
    details.push(`Health:   ${healthUrl} ${answer.healthy ? 'healthy' : `not healthy (${answer.reason})`}`)
    if (health.version !== undefined) details.push(versionLine(health.version, ctx.version))
    if (health.uptimeSeconds !== undefined) details.push(`Uptime:   ${formatUptime(health.uptimeSeconds)}`)
    warnings.unshift(...(await portWarnings(service, server, target, units.server, jobs.server)))
  }

  const drift = health?.version === undefined ? undefined : versionDriftWarning(health.version, ctx.version)
  if (drift) warnings.push(drift)
  const installed = anyFile
  const notes = await noting
  if (installed) details.push(...(notes?.details ?? []), `Logs:     ${NAMES.bin} service logs`)
  else details.push(`Install it: ${NAMES.bin} service install`)

  return {
    success: true,
    platform: driver.platform,
    message: `${NAMES.serviceName} service is ${installed ? 'installed' : 'not installed'}.`,
    details: [...details, ...wslNote(ctx)],
    installed,
    server: units.server,
    watchdog: units.watchdog,
    ...(socket ? {socket: {installed: socketShown, state: socketShown ? socket.state : 'not-installed'}} : {}),
    health,
    warnings: [...warnings, ...definitionWarnings(driver, definitions)],
    cliVersion: ctx.version,
    ...(notes?.linger === undefined ? {} : {linger: notes.linger}),
  }
}
