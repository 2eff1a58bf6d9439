import {basename} from 'node:path'

import {UserError} from '../errors.js'
import type {HealthAnswer} from '../server/health.js'
import {NAMES, serverUrl} from '../paths.js'
import {type Driver, type JobState, type Role, ROLES} from './driver.js'
import {type ServerTarget, verifyServing} from './health-wait.js'
import type {PlatformName, ServiceContext, ServiceResult} from './types.js'

/** The clock and the network as the core uses them, passed in so tests can hand in fakes. */
export interface Effects {
  /** Asks a server's health endpoint. */
  check: (url: string, timeoutMs: number) => Promise<HealthAnswer>
  /** Whether something accepts connections on `host:port`. */
  probe: (host: string, port: number) => Promise<boolean>
  /** Monotonic milliseconds. */
  now: () => number
  sleep: (ms: number) => Promise<void>
}

/** The real clock and network; node:http and node:net load with the first question. */
export const realEffects: Effects = {
  check: async (url, timeoutMs) => (await import('../server/health.js')).checkHealth(url, timeoutMs),
  probe: async (host, port) => (await import('../server/port-probe.js')).acceptsConnections(host, port),
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
}

/** What every service operation works with: the supervisor's driver, the outside world, the clock and the network. */
export interface Service {
  driver: Driver
  ctx: ServiceContext
  effects: Effects
}

/** How many of the server's last log lines a diagnosis shows. */
const DIAGNOSIS_LINES = 10

/** A failed result. */
export function failed(platform: PlatformName, message: string, details: string[] = []): ServiceResult {
  return {success: false, platform, message, details}
}

/**
 * The one place a failure the user can act on (a UserError: a refused
 * flag, a lock held by another command, a supervisor's refusal) becomes a
 * failed result; anything else is a bug and is rethrown.
 */
export async function asResult<T extends ServiceResult>(platform: PlatformName, work: () => Promise<T>): Promise<T | ServiceResult> {
  try {
    return await work()
  } catch (error) {
    if (!(error instanceof UserError)) throw error
    return failed(platform, error.message, error.details)
  }
}

/** Runs `work`; a UserError it throws gets `line` as its last detail (what the failure left behind, what to do). */
export async function addingDetail<T>(line: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (error) {
    if (error instanceof UserError) error.details.push(line)
    throw error
  }
}

/** Names for a message: `a`, `a and b`, `a, b and c`. */
export function nameList(names: readonly string[]): string {
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names.at(-1)}` : names.join('')
}

/** The jobs' names for a message: `amplifier-distro.service and amplifier-distro-watchdog.service`. */
export function jobNames(driver: Driver, roles: readonly Role[]): string {
  return nameList(roles.map((role) => driver.jobName(role)))
}

/** The files' names for a message. */
export function fileNames(files: readonly {path: string}[]): string {
  return nameList(files.map((file) => basename(file.path)))
}

/** True when the role's definition is installed. */
export function hasFiles(driver: Driver, role: Role): boolean {
  return driver.read(role) !== undefined
}

/** The roles installed: the server, and the watchdog when its files are there. */
export function installedRoles(driver: Driver): Role[] {
  return ROLES.filter((role) => role === 'server' || hasFiles(driver, role))
}

/** What start, stop, restart and logs answer with nothing installed. */
export function notInstalled(driver: Driver, verb: string): ServiceResult {
  return failed(driver.platform, `${NAMES.serviceName} service is not installed, so there is nothing to ${verb}.`, [`Install it: ${NAMES.bin} service install`])
}

/** What start, stop and restart act on: where the server serves, the installed roles and both jobs' state. */
export interface Prepared {
  target: ServerTarget
  roles: Role[]
  jobs: Record<Role, JobState>
}

/**
 * What start, stop and restart need before they act: the server's address
 * from its definition, and both jobs' state. A failed result when nothing
 * is installed or the supervisor does not answer.
 */
export async function prepare({driver}: Service, command: 'start' | 'stop' | 'restart'): Promise<Prepared | ServiceResult> {
  const target = driver.read('server')?.target
  if (!target) return notInstalled(driver, command)
  if (command !== 'stop') driver.admit?.(command)
  const inspection = await driver.inspect()
  if ('unreachable' in inspection) return failed(driver.platform, `${driver.manager} is not reachable; cannot ${command} the service.`, inspection.unreachable)
  return {target, roles: installedRoles(driver), jobs: inspection.jobs}
}

/** The detail line that says where the server serves. */
export function servesLine(target: ServerTarget): string {
  return `Serves: ${serverUrl(target.host, target.port)}`
}

/**
 * Ends install, start and restart as `verifyServing` says: the server must
 * answer from the main PID the supervisor reports for the server job; the
 * wait ends early once the supervisor has given the server up, and the
 * diagnosis tells the job's state and the server's last lines.
 */
export async function verified(
  {driver, effects}: Service,
  command: 'install' | 'start' | 'restart',
  target: ServerTarget,
  timing: {startedAt: number; waitSeconds: number; previousPid?: number},
  done: ServiceResult,
): Promise<ServiceResult> {
  return verifyServing(done, {
    platform: driver.platform,
    command,
    target,
    timing,
    supervisor: {
      mainPid: () => driver.mainPid('server'),
      gaveUp: () => driver.gaveUp('server'),
      check: effects.check,
      now: effects.now,
      sleep: effects.sleep,
    },
    probe: effects.probe,
    async diagnose() {
      const [inspection, logTail] = await Promise.all([driver.inspect(), driver.logTail('server', DIAGNOSIS_LINES)])
      if ('unreachable' in inspection) return {supervisorState: `unknown: the ${driver.manager} does not answer`, logTail}
      const job = inspection.jobs.server
      const socket = job.socket
      const socketFailed = socket?.failure === undefined ? '' : `; its socket is ${socket.detail} (${socket.name})`
      return {
        supervisorState: `${job.detail} (${driver.jobName('server')})${socketFailed}`,
        logTail,
        configError: job.configError,
        // The supervisor's own socket listening on the port says nothing of another program.
        supervisorListens: socket?.state === 'active',
      }
    },
    portOwnerCommand: (port) => driver.portOwnerCommand(port),
    ...(driver.portOwner ? {portOwner: (port: number) => driver.portOwner?.(port)} : {}),
  })
}
