import {configError, UserError} from '../errors.js'
import {checkHealth, type HealthAnswer} from '../server/health.js'
import {createFileLogger, type Logger} from './logger.js'
import {pathsFor, serverUrl} from '../paths.js'
import {claimCommandPid, removePidIfOwned} from '../process/pidfile.js'
import {streamLines} from '../process/exec.js'
import {portIsFree, restartStrategy, type RestartStrategy, spawnDetachedServer} from './restart-strategy.js'
import {supervisorOf} from '../service/drivers/registry.js'
import type {Exec} from '../service/types.js'
import {serverStopDeps, stopFromPidFile} from '../process/stop-pid-file.js'
import {parsePort, parseWhole, validateHost} from '../validate.js'

export interface WatchdogFlags {
  host: string
  port: string
  checkInterval: string
  restartAfter: string
  maxRestarts: string
}

export interface WatchdogSettings {
  host: string
  port: number
  checkIntervalMs: number
  restartAfterMs: number
  /** 0 means unlimited. */
  maxRestarts: number
  /** How long failed checks are not counted right after the watchdog starts, until the server first answers. */
  startGraceMs: number
}

/**
 * The longest a health check waits for its answer. Behind systemd's socket
 * a check made while the server restarts waits in the socket's queue
 * instead of being refused, and a busy server answers late; both must not
 * count as down. Shorter check intervals (tests, `--check-interval 1`) get
 * a time-out as long as the interval, but never below 2 s.
 */
export const HEALTH_TIMEOUT_MS = 8000
const MIN_HEALTH_TIMEOUT_MS = 2000

/** The time-out of each health check for a check interval. */
export function healthTimeoutMs(checkIntervalMs: number): number {
  return Math.min(HEALTH_TIMEOUT_MS, Math.max(MIN_HEALTH_TIMEOUT_MS, checkIntervalMs))
}

/** One day: also keeps the interval far below setTimeout's 24.8-day ceiling. */
const MAX_INTERVAL_S = 86_400

/**
 * The start-up grace is restart-after, capped at 30 s: at boot the server
 * unit and the watchdog start together and the server may not listen yet;
 * 30 s covers a slow boot without delaying a real repair much (the default
 * restart-after is 20 s), and a short restart-after keeps a short grace.
 */
const MAX_START_GRACE_MS = 30_000

function parseBounded(what: string, value: string, min: number, max: number): number {
  const n = parseWhole(what, value, min)
  if (n > max) throw new UserError(`Invalid ${what}: ${JSON.stringify(value)}. Use a whole number from ${min} to ${max}.`)
  return n
}

/** Validates the watchdog's flags; throws a UserError with exit code `EXIT_CONFIG` naming the first bad one. */
export function watchdogSettings(flags: WatchdogFlags): WatchdogSettings {
  return configError(() => {
    const restartAfterMs = parseBounded('restart-after', flags.restartAfter, 1, 7 * MAX_INTERVAL_S) * 1000
    return {
      host: validateHost(flags.host),
      port: parsePort(flags.port),
      checkIntervalMs: parseBounded('check interval', flags.checkInterval, 1, MAX_INTERVAL_S) * 1000,
      restartAfterMs,
      maxRestarts: parseBounded('max restarts', flags.maxRestarts, 0, 1_000_000),
      startGraceMs: Math.min(restartAfterMs, MAX_START_GRACE_MS),
    }
  })
}

/** `12 s`, `5 min 3 s`. */
export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000)
  if (seconds < 60) return `${seconds} s`
  const rest = seconds % 60
  return rest === 0 ? `${Math.floor(seconds / 60)} min` : `${Math.floor(seconds / 60)} min ${rest} s`
}

/** Waits `ms`, or less when `signal` aborts (at once when it already has). */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve()
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }

    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, {once: true})
  })
}

export interface LoopDeps {
  /** One health check of the server. */
  check: () => Promise<HealthAnswer>
  /** Monotonic milliseconds. */
  now: () => number
  /** Waits `ms`; must return early when the signal aborts. */
  sleep: (ms: number, signal: AbortSignal) => Promise<void>
  /** Fires on SIGTERM/SIGINT. */
  signal: AbortSignal
  log: Logger
  strategy: RestartStrategy
}

/**
 * One restart attempt through the strategy, logged: resolves to an exit code
 * when the strategy hands the restart to a supervisor, to `restarted` when a
 * fresh server runs, and to undefined when the attempt failed (a busy port,
 * an error), which keeps the downtime clock.
 */
async function restartAttempt(
  settings: WatchdogSettings,
  deps: LoopDeps,
  {attempt, down, reason}: {attempt: number; down: number; reason: string},
): Promise<number | 'restarted' | undefined> {
  const of = settings.maxRestarts > 0 ? ` of ${settings.maxRestarts}` : ''
  deps.log.warn(`Server down for ${formatDuration(down)} (${reason}): restart attempt ${attempt}${of}.`)
  let outcome
  try {
    outcome = await deps.strategy.restart()
  } catch (error) {
    deps.log.error(`Restart attempt ${attempt} failed: ${(error as Error).message}`)
    return undefined
  }

  if (outcome.kind === 'exit') {
    deps.log.info(outcome.message)
    return outcome.code
  }

  if (outcome.kind === 'restarted') {
    deps.log.info(outcome.message)
    return 'restarted'
  }

  // A shutdown cuts the wait for the port short; that is no busy port.
  if (!deps.signal.aborted) deps.log.warn('Port still busy — will retry next cycle')
  return undefined
}

/**
 * The supervision loop; resolves to the exit code.
 *
 * Every `checkIntervalMs` it checks the server.
 * 1. Start: until the server first answers, failed checks within
 *    `startGraceMs` of the start are logged once and not counted.
 * 2. The first counted failure starts a downtime clock (from when that
 *    check was sent); a recovery resets it and logs how long the server was down.
 * 3. Once the server has been down for `restartAfterMs`, a strategy that can
 *    tell the server is held by its supervisor (a failed systemd unit, a
 *    launchd job that keeps exiting with a configuration error) waits:
 *    that is logged once, and checking goes on until the server is started
 *    again. Otherwise the strategy restarts it: a successful restart resets
 *    the clock, a port that is still busy keeps it (the next check tries
 *    again). Every attempt counts toward `maxRestarts`; when a restart is due
 *    and none are left, it logs an error and resolves to 1. A strategy that
 *    hands the restart to a supervisor ends the loop with its code.
 * An aborted signal ends the loop with 0.
 */
export async function superviseLoop(settings: WatchdogSettings, deps: LoopDeps): Promise<number> {
  const state: Outage = {graceEnds: deps.now() + settings.startGraceMs, answered: false, graceLogged: false, heldLogged: false, attempts: 0}
  while (!deps.signal.aborted) {
    // A failure counts from when the check was sent: a hung server was already not answering then.
    const sentAt = deps.now()
    const answer = await deps.check()
    if (deps.signal.aborted) break
    const code = await observe(settings, deps, state, answer, sentAt)
    if (code !== undefined) return code
    await deps.sleep(settings.checkIntervalMs, deps.signal)
  }

  return 0
}

/** What the loop remembers between checks. */
interface Outage {
  /** Until then, failures before the first answer are not counted. */
  graceEnds: number
  /** The server has answered at least once. */
  answered: boolean
  graceLogged: boolean
  /** When the current outage began (the first counted failure's check), while there is one. */
  downSince?: number
  /** The supervisor's hold has been logged for this outage. */
  heldLogged: boolean
  /** Restart attempts so far. */
  attempts: number
}

/** One check's answer, as `superviseLoop` describes; resolves to an exit code when the loop ends. */
async function observe(settings: WatchdogSettings, deps: LoopDeps, state: Outage, answer: HealthAnswer, sentAt: number): Promise<number | undefined> {
  const {log} = deps
  const now = deps.now()
  if (answer.healthy) {
    if (state.downSince !== undefined) log.info(`Server healthy again after ${formatDuration(now - state.downSince)} down.`)
    Object.assign(state, {answered: true, downSince: undefined, heldLogged: false})
    return undefined
  }

  const reason = answer.reason ?? 'no answer'
  if (!state.answered && sentAt < state.graceEnds) {
    if (!state.graceLogged) log.info(`Server not answering yet (${reason}); it has ${formatDuration(settings.startGraceMs)} to start.`)
    state.graceLogged = true
    return undefined
  }

  const first = state.downSince === undefined
  if (state.downSince === undefined) {
    state.downSince = sentAt
    log.warn(`Server unhealthy (${reason}); it is restarted if it stays down for ${formatDuration(settings.restartAfterMs)}.`)
  }

  const down = now - state.downSince
  if (down >= settings.restartAfterMs) return restartDue(settings, deps, state, {down, reason})
  if (!first) log.warn(`Server still unhealthy (${reason}), down for ${formatDuration(down)}.`)
  return undefined
}

/** A restart is due: wait while the supervisor holds the server, give up when the budget is spent, otherwise try one. */
async function restartDue(settings: WatchdogSettings, deps: LoopDeps, state: Outage, {down, reason}: {down: number; reason: string}): Promise<number | undefined> {
  const {log} = deps
  const held = await deps.strategy.held?.()
  if (held !== undefined) {
    if (!state.heldLogged) log.error(held)
    state.heldLogged = true
    return undefined
  }

  if (state.heldLogged) log.info('The server is no longer held by its supervisor; restarting it as usual.')
  state.heldLogged = false
  if (settings.maxRestarts > 0 && state.attempts >= settings.maxRestarts) {
    log.error(`Server down for ${formatDuration(down)} (${reason}) and all ${settings.maxRestarts} restart attempts are used up (--max-restarts); giving up.`)
    return 1
  }

  state.attempts++
  const result = await restartAttempt(settings, deps, {attempt: state.attempts, down, reason})
  if (typeof result === 'number') return result
  if (result === 'restarted') state.downSince = undefined
  return undefined
}

export interface WatchdogDeps {
  home: string
  env: NodeJS.ProcessEnv
  /** This process's PID, written to watchdog.pid. */
  pid: number
  uid: number
  /** Fires on SIGTERM/SIGINT. */
  signal: AbortSignal
  /** For binary resolution in standalone mode. */
  argv: readonly string[]
  cwd: string
  execPath: string
  exec: Exec
  /** Receives log lines as well as the log file (stderr in the CLI, unless that is a regular file); none when absent. */
  echo?: (line: string) => void
}

/** How long a standalone restart waits for the old server's port to be released. */
const PORT_WAIT_MS = 10_000

async function waitPortFree(host: string, port: number, ms: number, signal: AbortSignal): Promise<boolean> {
  const deadline = performance.now() + ms
  for (;;) {
    if (await portIsFree(host, port)) return true
    if (signal.aborted || performance.now() >= deadline) return false
    await abortableSleep(200, signal)
  }
}

/**
 * `amp-distro watchdog`: keeps the server at `host:port` healthy; resolves
 * to the exit code.
 *
 * 1. Validates the flags before anything is written (exit 78, `EXIT_CONFIG`).
 * 2. Claims watchdog.pid exclusively: of two watchdogs started at once for
 *    one home, one runs and the other fails with "already running"; a
 *    stale file is taken over.
 * 3. Logs to ~/.amplifier/server/watchdog.log (rotated) and to `echo`.
 * 4. Runs the loop with the restart strategy for its supervisor (systemd,
 *    launchd or none, see `detectSupervisor`) until a signal, a supervisor
 *    hand-off or the end of its restart budget.
 * 5. Removes its PID file.
 */
export async function watchdog(flags: WatchdogFlags, deps: WatchdogDeps): Promise<number> {
  const settings = watchdogSettings(flags)
  const paths = pathsFor(deps.home, deps.env)
  const supervisor = await supervisorOf(deps.env, deps.pid, {home: deps.home, env: deps.env, uid: deps.uid, user: deps.env.USER ?? '', exec: deps.exec, stream: streamLines})
  await claimCommandPid(paths.watchdogPid, deps.pid, 'watchdog', (holder) => new UserError(`watchdog already running (PID ${holder}); its PID file is ${paths.watchdogPid}.`))
  const log = createFileLogger({file: paths.watchdogLog, echo: deps.echo})
  try {
    const url = `${serverUrl(settings.host, settings.port)}/api/health`
    const timeoutMs = healthTimeoutMs(settings.checkIntervalMs)
    // Under systemd a server found down for restart-after is killed at once: killed, it is restarted
    // (Restart=on-failure) while its socket stays open; a clean exit would close the socket.
    const stopDeps = serverStopDeps(supervisor?.killDownServer ? 0 : undefined)
    const strategy = restartStrategy(supervisor, {
      stop: () => stopFromPidFile(paths.serverPid, stopDeps),
      waitPortFree: () => waitPortFree(settings.host, settings.port, PORT_WAIT_MS, deps.signal),
      // Resolved at each restart, not at start-up: binary resolution loads
      // modules a healthy watchdog never needs, and an upgrade in between is honoured.
      spawnServer: async () =>
        spawnDetachedServer({
          bin: (await import('../binary.js')).resolveBinary({argv: deps.argv, env: deps.env, cwd: deps.cwd}).path,
          host: settings.host,
          port: settings.port,
          crashLog: paths.crashLog,
          env: deps.env,
          execPath: deps.execPath,
          banner: `--- ${new Date().toISOString()} amp-distro watchdog (PID ${deps.pid}) starts the server ---`,
        }),
      log,
    })
    const limit = settings.maxRestarts === 0 ? 'unlimited' : String(settings.maxRestarts)
    log.info(
      `Watchdog started (PID ${deps.pid}, ${strategy.mode}): checking ${url} every ${formatDuration(settings.checkIntervalMs)}, ` +
        `restart after ${formatDuration(settings.restartAfterMs)} down, max restarts ${limit}.`,
    )
    const code = await superviseLoop(settings, {
      // A stop ends a check at once: behind systemd's socket a check waits for a server that is being
      // restarted, and that restart waits for this watchdog to stop (PartOf=).
      check: () => checkHealth(url, timeoutMs, deps.signal),
      now: () => performance.now(),
      sleep: abortableSleep,
      signal: deps.signal,
      log,
      strategy,
    })
    log.info(deps.signal.aborted ? 'Watchdog stopped by signal.' : `Watchdog exiting with status ${code}.`)
    return code
  } finally {
    removePidIfOwned(paths.watchdogPid, deps.pid)
  }
}
