import {setTimeout as sleepFor} from 'node:timers/promises'

import type {HealthAnswer} from '../server/health.js'
import {hostPort, NAMES, serverUrl} from '../paths.js'
import type {PlatformName, ServiceResult, ServingReport} from './types.js'

/** The longest one health check of the wait for a new server may take. */
const MAX_CHECK_MS = 5000

/** Where the installed server listens. */
export interface ServerTarget {
  host: string
  port: number
}

/** A port a server can listen on; a hand-edited unit may name another (`--port 99999`), which nothing can be asked on. */
export function isListenablePort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65_535
}

export interface WaitDeps {
  /** The supervisor's main PID for the server job right now; 0 or undefined while it has none. */
  mainPid: () => Promise<number | undefined>
  /** True once the supervisor has given the server up and will not start it again by itself (systemd: `failed`); the wait then ends early. */
  gaveUp?: () => Promise<boolean>
  /** Asks the health endpoint, waiting at most `timeoutMs` for the answer. */
  check?: (url: string, timeoutMs: number) => Promise<HealthAnswer>
  /** Monotonic milliseconds. */
  now?: () => number
  sleep?: (ms: number) => Promise<void>
  /** How often to ask, in ms. */
  pollMs?: number
}

export interface WaitOptions {
  /** When the command started (`deps.now` clock): the report counts from there. */
  startedAt: number
  waitSeconds: number
  /** restart: the main PID before the restart, which must not be the one that answers. */
  previousPid?: number
}

/**
 * The health of the server a unit or plist installs at `url`: a port nothing
 * can listen on (hand-edited) is reported, never asked over HTTP, and
 * node:http loads only when there is a server to ask.
 */
export async function installedHealth(url: string, port: number, check: (url: string, timeoutMs: number) => Promise<HealthAnswer>): Promise<HealthAnswer> {
  if (!isListenablePort(port)) return {healthy: false, reason: `port ${port} is not a TCP port`}
  return check(url, 2000)
}

/**
 * Waits until the server answers `GET /api/health` with 200 from the very
 * process the supervisor runs for the server job: the `pid` in the health
 * JSON equals the job's main PID (and, for a restart, differs from
 * `previousPid`). An old server still answering, or another program on the
 * port, never counts. Gives up `waitSeconds` after `startedAt`, or earlier
 * once the supervisor has given the server up. A port nothing can listen on
 * (a hand-edited `--port 99999`) is never asked; the wait still runs until
 * the supervisor tells how the server ended, which names the cause.
 */
export async function waitUntilServing(target: ServerTarget, options: WaitOptions, deps: WaitDeps): Promise<ServingReport> {
  const now = deps.now ?? (() => performance.now())
  const sleep = deps.sleep ?? ((ms: number) => sleepFor(ms))
  const url = `${serverUrl(target.host, target.port)}/api/health`
  const deadline = options.startedAt + options.waitSeconds * 1000
  // A busy server answers late, and behind systemd's socket a check made while the server starts waits for it
  // instead of being refused: each check may wait up to 5 s, never past the deadline by more than a second.
  // node:http loads with the first question, so a module that only needs isListenablePort stays light.
  const check = deps.check ?? (async (url: string, timeoutMs: number) => (await import('../server/health.js')).checkHealth(url, timeoutMs))
  const report = (healthy: boolean, pid: number | undefined, version?: string): ServingReport => ({
    url,
    healthy,
    ...(pid ? {pid} : {}),
    ...(options.previousPid ? {previousPid: options.previousPid} : {}),
    ...(version === undefined ? {} : {version}),
    elapsedMs: Math.round(now() - options.startedAt),
    waitSeconds: options.waitSeconds,
  })

  for (;;) {
    const pid = await deps.mainPid()
    if (pid && pid !== options.previousPid && isListenablePort(target.port)) {
      const answer = await check(url, Math.min(MAX_CHECK_MS, Math.max(1000, deadline - now())))
      if (answer.healthy && answer.body?.pid === pid) return report(true, pid, answer.body.version)
    }

    if (now() >= deadline || (!pid && (await deps.gaveUp?.()))) return report(false, pid)
    await sleep(Math.min(deps.pollMs ?? 100, Math.max(deadline - now(), 1)))
  }
}

/** The command that names the program listening on a TCP port, on one platform (`ss` on Linux, `lsof` on macOS). */
export type PortOwnerCommand = (port: number) => string

/** The program listening on a TCP port (`name (PID n)`), where the platform can tell; undefined when it cannot. */
export type PortOwner = (port: number) => string | undefined

/**
 * What to say when another program holds the server's port, the usual
 * cause of a server that cannot start: the address, the command that names
 * the program, and how to move. `label` leads the first line (`Port:` in
 * the diagnosis, `Warning:` in status).
 */
export function portConflictLines(label: string, target: ServerTarget, portOwnerCommand: PortOwnerCommand, owner?: string): string[] {
  return [
    `${label} ${hostPort(target.host, target.port)} is in use by ${owner ?? 'another program'}, so the server cannot listen there.`,
    `  See which program: ${portOwnerCommand(target.port)}`,
    `  Stop that program, or install on another port: ${NAMES.bin} service install --port <port>`,
  ]
}

/** The status warning for a server that is not running while another program holds its port. */
export function portConflictWarning(target: ServerTarget, portOwnerCommand: PortOwnerCommand, owner?: string): string {
  return portConflictLines('Warning:', target, portOwnerCommand, owner).join('\n')
}

/** What a backend knows about a server that did not come up, for the diagnosis. */
export interface DiagnosisFacts {
  platform: Exclude<PlatformName, 'unsupported'>
  command: 'install' | 'start' | 'restart'
  target: ServerTarget
  report: ServingReport
  /** The supervisor's state for the server job, in its own words (`failed (exit-code)`, `spawn scheduled`…). */
  supervisorState: string
  /** The last lines of the server's log, oldest first. */
  logTail: string[]
  /** True when the supervisor says the server exited with EXIT_CONFIG: that is the cause, whoever else holds the port. */
  configError?: boolean
  /** True while the supervisor itself listens on the port (systemd's socket): a connection there says nothing of another program. */
  supervisorListens?: boolean
  /** The command that names the program holding a port, for this platform. */
  portOwnerCommand: PortOwnerCommand
  /** Names the program holding a port, where the platform can tell. */
  portOwner?: PortOwner
}

/**
 * The failed result of an install, start or restart whose server did not
 * answer in time: the supervisor's state, a port held by another program
 * (checked now: something accepts connections there although our server is
 * not the one answering, unless the server exited with a configuration
 * error), and the last lines of the server's log. What was
 * installed stays installed; only the health check failed.
 */
export async function servingFailure(
  facts: DiagnosisFacts,
  probe = async (host: string, port: number) => (await import('../server/port-probe.js')).acceptsConnections(host, port),
): Promise<ServiceResult> {
  const {target, report} = facts
  const details = [`Supervisor: the server is ${facts.supervisorState}.`]
  if (!isListenablePort(target.port)) {
    details.push(`Port: ${target.port} is not a TCP port (1-65535): fix the server's command line, or re-run ${NAMES.bin} service install --port <port>`)
  } else if (!facts.configError && !facts.supervisorListens && (await probe(target.host, target.port))) {
    details.push(...portConflictLines('Port:', target, facts.portOwnerCommand, facts.portOwner?.(target.port)))
  }

  if (facts.logTail.length > 0) details.push('Last lines of the server log:', ...facts.logTail.map((line) => `  ${line}`))
  details.push(`More: ${NAMES.bin} service logs`)
  if (facts.command === 'install') details.push(`The service stays installed; once the cause is fixed: ${NAMES.bin} service restart`)
  return {
    success: false,
    platform: facts.platform,
    message: `The server did not answer ${report.url} within ${report.waitSeconds} s after ${facts.command}.`,
    details,
    serving: report,
  }
}

/** The line that tells how long the new server took to answer. */
export function servingLine(report: ServingReport): string {
  return `Healthy: ${report.url} answered from PID ${report.pid} after ${(report.elapsedMs / 1000).toFixed(1)} s.`
}

/** How one backend proves an install, start or restart: its supervisor's answers, and what it tells of a server that did not come up. */
export interface Verification extends Pick<DiagnosisFacts, 'platform' | 'command' | 'target' | 'portOwnerCommand' | 'portOwner'> {
  timing: WaitOptions
  supervisor: WaitDeps
  /** The supervisor's state for the server job and the server's last log lines, asked once the wait has failed. */
  diagnose: () => Promise<Pick<DiagnosisFacts, 'supervisorState' | 'logTail' | 'configError' | 'supervisorListens'>>
  /** Whether something accepts connections on a port (the real one by default). */
  probe?: (host: string, port: number) => Promise<boolean>
}

/**
 * Ends an install, start or restart that the supervisor has accepted, as
 * `done` says:
 * 1. with `--wait 0` (`timing.waitSeconds` 0), `done` at once;
 * 2. otherwise it waits as `waitUntilServing` says;
 * 3. a healthy server: `done`, with how long it took and the report;
 * 4. otherwise the diagnosis of `servingFailure`, from what `diagnose` tells.
 */
export async function verifyServing(done: ServiceResult, verification: Verification): Promise<ServiceResult> {
  const {timing, target} = verification
  if (timing.waitSeconds === 0) return done
  const report = await waitUntilServing(target, timing, verification.supervisor)
  if (report.healthy) return {...done, details: [...done.details, servingLine(report)], serving: report}
  const {platform, command, portOwnerCommand, portOwner} = verification
  return servingFailure({platform, command, target, report, portOwnerCommand, ...(portOwner ? {portOwner} : {}), ...(await verification.diagnose())}, verification.probe)
}
