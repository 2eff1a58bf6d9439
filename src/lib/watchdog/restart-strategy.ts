import {spawn} from 'node:child_process'
import {closeSync, writeSync} from 'node:fs'
import {createServer} from 'node:net'
import {delimiter, dirname} from 'node:path'

import {EXIT_CONFIG, UserError} from '../errors.js'
import type {Logger} from './logger.js'
import {openBoundedAppend} from '../process/output-bound.js'
import {NAMES} from '../paths.js'
import type {Driver} from '../service/driver.js'
import type {StopOutcome} from '../process/stop-pid-file.js'

/** What a restart attempt came to. */
export type RestartOutcome =
  /** A fresh server was started. */
  | {kind: 'restarted'; message: string}
  /** The port stayed taken after the old server was stopped: a failed attempt. */
  | {kind: 'port-busy'}
  /** The supervisor brings the server back: the watchdog exits with `code` so that it is restarted too. */
  | {kind: 'exit'; code: number; message: string}

/** One way of bringing the server back. */
export interface RestartStrategy {
  /** The supervisor's name (`systemd`, `launchd`), or `standalone`. */
  readonly mode: string
  restart(): Promise<RestartOutcome>
  /**
   * Why a restart must wait for the user (a message saying what to do), or
   * undefined when restarting may go ahead. Only supervisors that can hold
   * a server back have it.
   */
  held?(): Promise<string | undefined>
}

export interface RestartDeps {
  /** Stops the server named in `server.pid` (src/lib/process/stop-pid-file.ts). */
  stop: () => Promise<StopOutcome>
  /** Waits (bounded) until the server's port can be bound again; false when it is still taken. */
  waitPortFree: () => Promise<boolean>
  /** Starts a detached `amp-distro serve` and resolves to its PID. */
  spawnServer: () => Promise<number>
  log: Logger
}

function describeStop(outcome: StopOutcome, pidFile = 'server.pid'): string {
  switch (outcome.kind) {
    case 'absent': {
      return `No server to stop (no usable ${pidFile}).`
    }

    case 'stale': {
      return outcome.alive
        ? `${pidFile} named PID ${outcome.pid}, which is not an amp-distro serve: removed the stale file, signalled nothing.`
        : `${pidFile} named PID ${outcome.pid}, which is no longer running: removed the stale file.`
    }

    case 'stopped': {
      return `Stopped the server (PID ${outcome.pid}).`
    }

    case 'killed': {
      return `Killed the server (PID ${outcome.pid}): it did not exit after SIGTERM.`
    }
  }
}

/**
 * Why the supervisor holds the server back, or undefined when it does not
 * (or does not answer): a server job it gave up (a systemd unit `failed`
 * at its start limit or with a configuration error, a launchd job that
 * keeps exiting with one) is not started by a watchdog restart either, so
 * exiting would only repeat every restart-after. It needs the user.
 */
async function heldBy(supervisor: Driver): Promise<string | undefined> {
  const inspection = await supervisor.inspect()
  if ('unreachable' in inspection) return undefined
  const job = inspection.jobs.server
  // A program the supervisor could not start at all may start after a restart, which creates the log folder again.
  if (job.spawnFailed) return undefined
  // A failed socket (its port taken, or the server's start limit) holds the server back as well.
  const socket = job.socket?.failure === undefined ? undefined : job.socket
  if (!job.gaveUp && !socket) return undefined
  const why = job.gaveUp
    ? job.configError
      ? `exited with a configuration error (exit code ${EXIT_CONFIG})`
      : `has failed (${job.failure ?? 'unknown reason'})`
    : `cannot start: its socket ${socket?.name} failed (${socket?.failure})`
  return (
    `The server job ${supervisor.jobName('server')} ${why}; restarting it cannot help until the cause is fixed. ` +
    `Run \`${NAMES.bin} service status\`, which says why and names the line to fix, and \`${NAMES.bin} service logs\`; once the cause is fixed: ${supervisor.reloadHint}. ` +
    'Waiting for the server to be started again.'
  )
}

/**
 * Picks how to restart the server:
 * - under a supervisor (`supervisor`, the driver of the one that started
 *   this watchdog): stop the server, have the supervisor start the server
 *   job again where the watchdog's exit does not (launchd has no `Wants=`),
 *   and exit 1 so that the supervisor restarts the watchdog; while the
 *   supervisor has given the server job up, `held` says so and no restart
 *   is tried;
 * - standalone: stop the server, wait for its port, start a detached
 *   `amp-distro serve`.
 * Under a supervisor it never starts a server itself, so there is never a
 * second server or an orphan.
 */
export function restartStrategy(supervisor: Driver | undefined, deps: RestartDeps): RestartStrategy {
  const stop = async () => deps.log.info(describeStop(await deps.stop()))

  if (supervisor) {
    return {
      mode: supervisor.name,
      async restart() {
        await stop()
        if (!supervisor.watchdogExitRevivesServer) await revive(supervisor, deps.log)
        const also = supervisor.watchdogExitRevivesServer ? ' and starts the server again' : ''
        return {kind: 'exit', code: 1, message: `Exiting with status 1 so that ${supervisor.name} restarts the watchdog${also}.`}
      },
      held: () => heldBy(supervisor),
    }
  }

  return {
    mode: 'standalone',
    async restart() {
      await stop()
      if (!(await deps.waitPortFree())) return {kind: 'port-busy'}
      const pid = await deps.spawnServer()
      return {kind: 'restarted', message: `Started a new server (PID ${pid}).`}
    },
  }
}

/** Has the supervisor start the server job again; a refusal is logged, since the watchdog exits either way. */
async function revive(supervisor: Driver, log: Logger): Promise<void> {
  try {
    const inspection = await supervisor.inspect()
    if ('unreachable' in inspection) throw new UserError(inspection.unreachable.join(' '))
    await supervisor.restart(['server'], inspection.jobs)
  } catch (error) {
    if (!(error instanceof UserError)) throw error
    log.warn(`${supervisor.name} did not start ${supervisor.jobName('server')} again: ${[error.message, ...error.details].join(' ')}`)
  }
}

/** True when `host:port` can be bound right now (a listener is opened and closed at once). */
export function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer()
    probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code !== 'EADDRINUSE'))
    probe.listen({host, port, exclusive: true}, () => probe.close(() => resolve(true)))
  })
}

export interface SpawnServerOptions {
  /** The `amp-distro` to run (binary resolution, src/lib/binary.ts). */
  bin: string
  host: string
  port: number
  /** Appended to with the new server's stdout and stderr; emptied first when over `MAX_OUTPUT_BYTES`. */
  crashLog: string
  env: NodeJS.ProcessEnv
  /** The Node running the watchdog; its folder goes first on PATH so `#!/usr/bin/env node` finds it. */
  execPath: string
  /** A line written to the crash log before the server's own output. */
  banner: string
}

/**
 * Starts `<bin> serve --host <host> --port <port>` detached from the
 * watchdog: in its own session, output appended to the crash log (kept
 * under `MAX_OUTPUT_BYTES` here and by the server itself), not
 * waited for (so it outlives the watchdog). Resolves to its PID once it has
 * started, rejects when it cannot be started at all.
 */
export function spawnDetachedServer(options: SpawnServerOptions): Promise<number> {
  const fd = openBoundedAppend(options.crashLog)
  try {
    writeSync(fd, `${options.banner}\n`)
    const env = {...options.env, PATH: [dirname(options.execPath), options.env.PATH ?? ''].filter(Boolean).join(delimiter)}
    const child = spawn(options.bin, ['serve', '--host', options.host, '--port', String(options.port)], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env,
    })
    return new Promise((resolve, reject) => {
      child.once('error', reject)
      child.once('spawn', () => {
        child.unref()
        resolve(child.pid as number)
      })
    })
  } finally {
    closeSync(fd)
  }
}
