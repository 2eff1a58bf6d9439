import {EXIT_CONFIG, UserError} from '../../errors.js'
import {NAMES, pathsFor, serverUrl} from '../../paths.js'
import {staleWarnings} from '../stale.js'
import {formatUptime, versionDriftWarning, versionLine} from '../status-lines.js'
import type {ServiceContext, StatusResult, UnitStatus} from '../types.js'
import {installedHealth, isListenablePort, portConflictWarning} from '../verify.js'
import {exitedWithConfigError, type JobState, lastStartBound, type Launchctl, neverRan, serverWroteSince, spawnFailed} from './launchctl.js'
import {lastLines} from './logs.js'
import {findPlistMistake, type InstalledPlist, installedTarget, type LaunchdJob, readInstalledPlist, THROTTLE_SECONDS} from './plist.js'

const PLATFORM = 'macos'

/** The command that names the program listening on a TCP port, on macOS. */
export function portOwnerCommand(port: number): string {
  return `lsof -nP -iTCP:${port} -sTCP:LISTEN`
}

/**
 * The warning for a server that exits with EXIT_CONFIG: what it said last
 * on stderr, the plist line that holds the refused value, and how to load
 * the fixed plist (a kickstart runs the definition launchd already holds).
 */
export function configErrorWarning(job: LaunchdJob, installed: InstalledPlist | undefined, said: string | undefined): string {
  const mistake = installed && findPlistMistake(installed)
  return [
    `Warning: the server exits with a configuration error (exit code ${EXIT_CONFIG})${said ? `: ${said}` : '.'}`,
    `  launchd starts it again every ${THROTTLE_SECONDS} s, and each start fails the same way.`,
    mistake ? `  Fix line ${mistake.line} of ${job.plistPath}: ${mistake.text} (${mistake.reason})` : `  Fix ${job.plistPath}`,
    `  Then load the fixed plist: ${NAMES.bin} service stop && ${NAMES.bin} service start`,
    `  Or write a new one: ${NAMES.bin} service install --port <port>`,
  ].join('\n')
}

/** What tells launchd's own exit code 78 from the server's, and what to check when launchd could not start the program. */
export interface SpawnFacts {
  /** The server wrote a line to its stderr log since its last start. */
  serverWrote: boolean
  /** The folder the plists send output to. */
  logDir: string
  /** The program the server plist runs. */
  program?: string
}

/** What launchd's own exit code 78 means, and what to check. */
export function spawnFailureText(facts: SpawnFacts): string {
  return (
    `launchd could not start the program (its own exit code ${EXIT_CONFIG}, EX_CONFIG; the server never ran, and launchd tries again every ${THROTTLE_SECONDS} s). ` +
    `Check that the log folder ${facts.logDir} exists and is writable by you, and that ${facts.program ?? 'the program the plist names'} exists and can be run`
  )
}

/** The status warning for a server job launchd could not start. */
export function spawnFailureWarning(facts: SpawnFacts): string {
  return [`Warning: ${spawnFailureText(facts)}.`, `  Then load it again: ${NAMES.bin} service stop && ${NAMES.bin} service start`, `  Or write the plists again: ${NAMES.bin} service install`].join('\n')
}

/**
 * The status warning for a job launchd holds but has never started. On
 * macOS 13 and later a new agent in ~/Library/LaunchAgents is announced as
 * "Background Items Added", and the user can turn it off in System Settings
 * → General → Login Items; launchd then keeps the job loaded and never runs
 * it.
 */
export function neverRanWarning(job: LaunchdJob): string {
  return [
    `Warning: launchd holds ${job.label} but has never started it.`,
    '  macOS does so for a background item turned off in System Settings → General → Login Items ("Allow in the Background").',
    `  Turn it on there, then run: ${NAMES.bin} service restart`,
  ].join('\n')
}

/** The warning for a plist whose `--port` is no TCP port, before launchd has run the server with it: serve will refuse it. */
export function unlistenablePortWarning(job: LaunchdJob, installed: InstalledPlist, port: number): string {
  const mistake = findPlistMistake(installed)
  return [
    `Warning: ${job.plistPath} names port ${port}, which is not a TCP port (1-65535): the server exits with a configuration error (exit code ${EXIT_CONFIG}).`,
    mistake ? `  Fix line ${mistake.line}: ${mistake.text}` : `  Fix ${job.plistPath}`,
    `  Or write a new one: ${NAMES.bin} service install --port <port>`,
  ].join('\n')
}

function describeJob(label: string, job: LaunchdJob, unit: UnitStatus): string {
  if (!unit.installed && unit.state === 'not-installed') return `${label} not installed (${job.label})`
  const pid = unit.pid === undefined ? '' : `, PID ${unit.pid}`
  return `${label} ${unit.state}${pid} (${job.label})${unit.installed ? '' : `, loaded but ${job.plistPath} is gone`}`
}

/**
 * launchd status steps:
 * 1. read both plists; ask launchctl about each job (`print`, or `list` on
 *    an older launchctl); a job with a plist that launchd does not hold is
 *    `stopped`; when launchctl does not tell (no GUI session, a call that
 *    hangs, another refusal) both are `unknown`, never `stopped`;
 * 2. ask the server's health on the host and port its plist names: PID,
 *    version (compared with this CLI's) and uptime;
 * 3. warnings: launchd's own exit code 78 (it could not start the program:
 *    the log folder and the program to check), a configuration error (the
 *    server's own exit 78, with its line in server.err.log since the last
 *    start) with the plist line to fix, a job launchd holds but never
 *    started (turned off in Login Items), a port that is no TCP port (never asked over HTTP),
 *    another program on the port of a server that is not running,
 *    unreadable plists, version drift, and drift of the install (deprecated
 *    binary, missing executable or Node folder).
 */
export async function launchdStatus(ctx: ServiceContext, launchctl: Launchctl, [serverJob, watchdogJob]: [LaunchdJob, LaunchdJob]): Promise<StatusResult> {
  const paths = pathsFor(ctx.home, ctx.env)
  const installed = {server: readInstalledPlist(serverJob.plistPath), watchdog: readInstalledPlist(watchdogJob.plistPath)}
  const unitOf = (state: JobState, plistFile: InstalledPlist | undefined): UnitStatus => {
    const name = state.loaded ? state.state : plistFile ? 'stopped' : 'not-installed'
    return {installed: plistFile !== undefined, state: name, ...(state.pid === undefined ? {} : {pid: state.pid})}
  }

  let states: [JobState, JobState]
  try {
    states = [await launchctl.inspect(serverJob), await launchctl.inspect(watchdogJob)]
  } catch (error) {
    if (!(error instanceof UserError)) throw error
    const unknown = (plistFile: InstalledPlist | undefined): UnitStatus => ({installed: plistFile !== undefined, state: 'unknown'})
    return {
      success: false,
      platform: PLATFORM,
      message: `Cannot read the service state: ${error.message}`,
      details: error.details,
      installed: installed.server !== undefined || installed.watchdog !== undefined,
      server: unknown(installed.server),
      watchdog: unknown(installed.watchdog),
      health: null,
      warnings: [],
      cliVersion: ctx.version,
    }
  }

  const server = unitOf(states[0], installed.server)
  const watchdog = unitOf(states[1], installed.watchdog)
  const definitions = [installed.server, installed.watchdog].filter((plistFile): plistFile is InstalledPlist => plistFile !== undefined)
  const warnings = [
    ...[serverJob, watchdogJob].flatMap((job, i) => {
      const problem = [installed.server, installed.watchdog][i]?.problem
      return problem === undefined ? [] : [`Warning: ${job.plistPath} is not a readable property list (${problem}).\n  Re-run: ${NAMES.bin} service install`]
    }),
    ...staleWarnings(definitions),
  ]

  const anyInstalled = server.installed || watchdog.installed
  const details = ['Platform: macos (launchd user agents)', describeJob('Server:  ', serverJob, server), describeJob('Watchdog:', watchdogJob, watchdog)]
  if (server.state === 'stopped') details.push(`Start it: ${NAMES.bin} service start`)

  let health: StatusResult['health'] = null
  if (installed.server && installed.server.problem === undefined) {
    const target = installedTarget(installed.server)
    const url = `${serverUrl(target.host, target.port)}/api/health`
    const listenable = isListenablePort(target.port)
    const [answer, {acceptsConnections}] = await Promise.all([installedHealth(url, target.port), import('../../port-probe.js')])
    const body = answer.healthy ? answer.body : undefined
    health = {url, healthy: answer.healthy, ...(answer.reason === undefined ? {} : {reason: answer.reason}), ...body}
    details.push(`Health:   ${url} ${answer.healthy ? 'healthy' : `not healthy (${answer.reason})`}`)
    if (body?.version !== undefined) {
      details.push(versionLine(body.version, ctx.version))
      const drift = versionDriftWarning(body.version, ctx.version)
      if (drift) warnings.push(drift)
    }

    if (body?.uptimeSeconds !== undefined) details.push(`Uptime:   ${formatUptime(body.uptimeSeconds)}`)
    const facts: SpawnFacts = {serverWrote: serverWroteSince(paths.serverStderrLog, lastStartBound(Date.now())), logDir: paths.serverDir, ...(installed.server.program ? {program: installed.server.program} : {})}
    if (spawnFailed(states[0], facts.serverWrote)) {
      warnings.unshift(spawnFailureWarning(facts))
    } else if (exitedWithConfigError(states[0], facts.serverWrote)) {
      warnings.unshift(configErrorWarning(serverJob, installed.server, lastLines(paths.serverStderrLog, 1)[0]))
    } else if (!listenable) {
      warnings.unshift(unlistenablePortWarning(serverJob, installed.server, target.port))
    } else if (server.pid === undefined && (await acceptsConnections(target.host, target.port))) {
      warnings.unshift(portConflictWarning(target, portOwnerCommand))
    }
  }

  for (const [i, job] of [serverJob, watchdogJob].entries()) if (neverRan(states[i])) warnings.push(neverRanWarning(job))
  if (anyInstalled) details.push(`Logs:     ${NAMES.bin} service logs`)
  else details.push(`Install it: ${NAMES.bin} service install`)
  return {
    success: true,
    platform: PLATFORM,
    message: anyInstalled ? `${NAMES.serviceName} service is installed.` : `${NAMES.serviceName} service is not installed.`,
    details,
    installed: anyInstalled,
    server,
    watchdog,
    health,
    warnings,
    cliVersion: ctx.version,
  }
}
