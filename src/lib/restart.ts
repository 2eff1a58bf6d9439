import {spawn} from 'node:child_process'
import {closeSync, writeSync} from 'node:fs'
import {createServer} from 'node:net'
import {delimiter, dirname} from 'node:path'

import type {Logger} from './logger.js'
import {openBoundedAppend} from './output-bound.js'
import {EXIT_CONFIG} from './errors.js'
import {NAMES} from './paths.js'
import {exitedWithConfigError, parseLaunchctlPrint} from './service/launchd/launchctl.js'
import {serverHeldBy} from './service/systemd/systemctl.js'
import {SERVER_UNIT, SOCKET_UNIT} from './service/systemd/unit.js'
import type {Exec} from './service/types.js'
import type {StopOutcome} from './stop.js'

/** The supervisor the watchdog runs under, if any. */
export type Supervisor = 'systemd' | 'launchd'

/**
 * Which supervisor started this process, judged from what the supervisor
 * gives this very process, never from markers a child inherits:
 * - systemd sets `SYSTEMD_EXEC_PID` to the PID it started. Our units run
 *   Node through `#!/usr/bin/env node` or a launcher that `exec`s Node, so
 *   under our unit it is this process's own PID. A shell started from some
 *   unit (a terminal, an IDE) passes `INVOCATION_ID` and its own
 *   `SYSTEMD_EXEC_PID` on to everything it starts, so neither alone counts.
 * - launchd sets `XPC_SERVICE_NAME` to the job's label for the processes it
 *   starts (`launchctl print` lists it in the job's environment); our plists
 *   set `LAUNCHD_JOB_NAME` to the same label. Both must agree, and name one
 *   of our two jobs: a Terminal session has `XPC_SERVICE_NAME=0` or an
 *   `application.…` name, so a hand-run watchdog with `LAUNCHD_JOB_NAME`
 *   exported acts standalone, and so does one started from the environment
 *   of some other job (its shell, its children), which launchd would not
 *   restart for us. Our jobs start no shells, so no other process inherits
 *   our pair.
 */
export function detectSupervisor(env: NodeJS.ProcessEnv, pid: number): Supervisor | undefined {
  if (env.SYSTEMD_EXEC_PID === String(pid)) return 'systemd'
  const ours: (string | undefined)[] = [NAMES.launchdLabel, NAMES.launchdWatchdogLabel]
  if (ours.includes(env.LAUNCHD_JOB_NAME) && env.XPC_SERVICE_NAME === env.LAUNCHD_JOB_NAME) return 'launchd'
  return undefined
}

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
  readonly mode: Supervisor | 'standalone'
  restart(): Promise<RestartOutcome>
  /**
   * Why a restart must wait for the user (a message saying what to do), or
   * undefined when restarting may go ahead. Only supervisors that can hold
   * a server back have it.
   */
  held?(): Promise<string | undefined>
}

export interface RestartDeps {
  /** Stops the server named in `server.pid` (src/lib/stop.ts). */
  stop: () => Promise<StopOutcome>
  /** Waits (bounded) until the server's port can be bound again; false when it is still taken. */
  waitPortFree: () => Promise<boolean>
  /** Starts a detached `amp-distro serve` and resolves to its PID. */
  spawnServer: () => Promise<number>
  exec: Exec
  uid: number
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
 * A server unit in state `failed` (its start limit was hit, or it exited
 * with a code systemd does not restart), or its socket `failed` (the port
 * was taken, or the server's start limit took the socket down), is not
 * started by a watchdog restart either: `Wants=` gives up at once, so
 * exiting would only repeat every restart-after. It needs the user. Any
 * other answer, or none, lets the restart go ahead.
 */
async function systemdServerHeld(exec: Exec): Promise<string | undefined> {
  const reason = await serverHeldBy(exec)
  if (reason === undefined) return undefined
  return (
    `systemd no longer restarts the server: ${reason} (start limit, configuration error, or its port taken). ` +
    `See \`${NAMES.bin} service status\` and \`${NAMES.bin} service logs\`, fix the cause, then run \`${NAMES.bin} service restart\` ` +
    `(or \`systemctl --user reset-failed ${SERVER_UNIT} ${SOCKET_UNIT}\` and start it). Waiting for the server to be started again.`
  )
}

/**
 * The server job held by launchd but not running, its last exit code
 * EXIT_CONFIG: a configuration that can never work. launchd starts it again
 * every ThrottleInterval by itself, and each start fails the same way, so a
 * `kickstart -k` every restart-after cannot help either. Any other answer,
 * or none, lets the restart go ahead.
 */
async function launchdServerHeld(exec: Exec, uid: number): Promise<string | undefined> {
  const target = `gui/${uid}/${NAMES.launchdLabel}`
  const result = await exec('launchctl', ['print', target])
  if (result.code !== 0 || !exitedWithConfigError({loaded: true, ...parseLaunchctlPrint(result.stdout)})) return undefined
  return (
    `The server job ${NAMES.launchdLabel} keeps exiting with a configuration error (exit code ${EXIT_CONFIG}), so restarting it cannot help. ` +
    `Run \`${NAMES.bin} service status\`, which names the line of its plist to fix; fix it, then run \`${NAMES.bin} service stop\` and \`${NAMES.bin} service start\` ` +
    `(or re-run \`${NAMES.bin} service install --port <port>\`). Waiting for the server to be started again.`
  )
}

/**
 * Picks how to restart the server:
 * - under systemd: stop the server, exit 1; systemd restarts the watchdog,
 *   whose `Wants=` starts the server unit again; while the server unit is
 *   `failed`, `held` says so and no restart is tried;
 * - under launchd: stop the server, `launchctl kickstart -k` the server job
 *   (launchd has no `Wants=`), exit 1; while the server job keeps exiting
 *   with a configuration error, `held` says so and no restart is tried;
 * - standalone: stop the server, wait for its port, start a detached
 *   `amp-distro serve`.
 * Under a supervisor it never starts a server itself, so there is never a
 * second server or an orphan.
 */
export function restartStrategy(supervisor: Supervisor | undefined, deps: RestartDeps): RestartStrategy {
  const stop = async () => deps.log.info(describeStop(await deps.stop()))

  if (supervisor === 'systemd') {
    return {
      mode: 'systemd',
      async restart() {
        await stop()
        return {kind: 'exit', code: 1, message: 'Exiting with status 1 so that systemd restarts the watchdog and starts the server again.'}
      },
      held: () => systemdServerHeld(deps.exec),
    }
  }

  if (supervisor === 'launchd') {
    return {
      mode: 'launchd',
      async restart() {
        await stop()
        const target = `gui/${deps.uid}/${NAMES.launchdLabel}`
        const result = await deps.exec('launchctl', ['kickstart', '-k', target])
        if (result.code !== 0) deps.log.warn(`launchctl kickstart -k ${target} failed (exit ${result.code}): ${result.stderr.trim()}`)
        return {kind: 'exit', code: 1, message: 'Exiting with status 1 so that launchd restarts the watchdog.'}
      },
      held: () => launchdServerHeld(deps.exec, deps.uid),
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
