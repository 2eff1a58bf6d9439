import type {Server} from 'node:http'
import type {AddressInfo} from 'node:net'

import {EXIT_CONFIG, UserError, configError} from '../errors.js'
import type {Io} from '../cli/io.js'
import {hostPort, pathsFor, serverUrl} from '../paths.js'
import {claimCommandPid, removePidIfOwned} from '../process/pidfile.js'
import {createDistroServer, stopServer} from './server.js'
import {aborted} from '../process/signals.js'
import {isLoopback, parsePort, validateHost} from '../validate.js'

export interface ServeFlags {
  host: string
  port: string
}

export interface ServeDeps {
  home: string
  io: Io
  version: string
  pid: number
  /** Fires when the server should shut down (SIGTERM/SIGINT in the CLI). */
  signal: AbortSignal
  /** How long open connections may take to finish after a stop, in ms. */
  drainMs?: number
  /**
   * The process environment: a listening socket handed over by systemd
   * (`LISTEN_PID`, `LISTEN_FDS`) is taken from it, and those variables are
   * removed from it. Without it, serve binds the port itself.
   */
  env?: NodeJS.ProcessEnv
}

/** The first descriptor systemd passes (SD_LISTEN_FDS_START). */
export const SD_LISTEN_FDS_START = 3
/** The listen queue serve asks for on a socket from systemd: the socket unit's Backlog=, which Node's default of 511 would lower. */
export const INHERITED_BACKLOG = 4096

/**
 * The listening descriptor systemd passed to this very process (socket
 * activation), or undefined: only when `LISTEN_PID` is `pid` and
 * `LISTEN_FDS` is a whole number of at least 1, as sd_listen_fds(3) says;
 * variables a parent process left behind for itself do not count.
 */
export function inheritedListener(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  if (env.LISTEN_PID !== String(pid)) return undefined
  const count = /^\d+$/.test(env.LISTEN_FDS ?? '') ? Number(env.LISTEN_FDS) : 0
  return count >= 1 ? SD_LISTEN_FDS_START : undefined
}

/** Removes systemd's socket-activation variables, so that no process this one starts takes them for its own. */
export function forgetListenEnv(env: NodeJS.ProcessEnv): void {
  delete env.LISTEN_PID
  delete env.LISTEN_FDS
  delete env.LISTEN_FDNAMES
}

function listenError(error: NodeJS.ErrnoException, host: string, port: number): UserError {
  const where = hostPort(host, port)
  switch (error.code) {
    case 'EADDRINUSE': {
      return new UserError(`Cannot listen on ${where}: address already in use (another process holds the port).`)
    }

    case 'EACCES': {
      return new UserError(`Cannot listen on ${where}: permission denied (ports below 1024 need privileges).`, {
        exit: EXIT_CONFIG,
        details: ['Use a port from 1024 to 65535.'],
      })
    }

    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN': {
      return new UserError(`Cannot listen on ${where}: the address is not available on this machine.`)
    }

    default: {
      return new UserError(`Cannot listen on ${where}: ${error.message}`)
    }
  }
}

/**
 * A socket from systemd that listens on another port than `--port` (a
 * hand-edited unit) would serve where no health check looks: a
 * configuration error, which no restart can fix.
 */
function checkInheritedPort(server: Server, port: number): void {
  const address = server.address()
  const bound = typeof address === 'object' && address !== null ? address.port : undefined
  if (bound === port) return
  throw new UserError(`The socket systemd passed listens on port ${bound ?? 'unknown'}, but --port is ${port}.`, {
    exit: EXIT_CONFIG,
    details: ['Re-run amp-distro service install --port <port>, which writes the server and socket units anew.'],
  })
}

/**
 * Runs the distro server until `deps.signal` fires.
 *
 * 1. Validates host and port before anything is bound or written; an
 *    invalid one is a configuration error (exit 78, `EXIT_CONFIG`).
 * 2. Claims `server.pid` exclusively (see `claimPidFile`): of two servers
 *    started at once for one home, whatever their ports, one gets it and
 *    the other fails with "already running"; a stale file is taken over.
 * 3. Listens: on the socket systemd passed (see `inheritedListener`; the
 *    socket-activation variables are then removed from `deps.env`), else on
 *    host and port itself; when that fails, removes its own PID file and
 *    reports why.
 * 4. On stop: closes the listener, lets open requests finish for up to
 *    `drainMs` (see `stopServer`), then removes its own PID file.
 */
export async function serve(flags: ServeFlags, deps: ServeDeps): Promise<void> {
  const {host, port} = configError(() => ({host: validateHost(flags.host), port: parsePort(flags.port)}))
  const paths = pathsFor(deps.home)
  await claimCommandPid(
    paths.serverPid,
    deps.pid,
    'serve',
    (holder) =>
      new UserError(`amp-distro serve is already running (PID ${holder}) for this home; its PID file is ${paths.serverPid}.`, {
        details: ['Stop that one first (amp-distro service stop, or end that process), or use another HOME.'],
      }),
  )

  const fd = deps.env ? inheritedListener(deps.env, deps.pid) : undefined
  if (deps.env) forgetListenEnv(deps.env)
  const server = createDistroServer({name: 'Amplifier distro server', version: deps.version, pid: deps.pid, now: () => performance.now()})
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => reject(listenError(error, host, port)))
      if (fd === undefined) server.listen({host, port, exclusive: true}, resolve)
      else server.listen({fd, backlog: INHERITED_BACKLOG}, resolve)
    })
    if (fd !== undefined) checkInheritedPort(server, port)
  } catch (error) {
    if (server.listening) server.close()
    removePidIfOwned(paths.serverPid, deps.pid)
    throw error
  }

  const bound = (server.address() as AddressInfo).port
  const from = fd === undefined ? '' : ', on the socket systemd passed'
  deps.io.log(`Amplifier distro server ${deps.version} listening on ${serverUrl(host, bound)} (PID ${deps.pid})${from}`)
  if (!isLoopback(host)) {
    deps.io.warn(`Warning: ${host} is reachable from the network, not only from this machine. Use --host 127.0.0.1 to keep it local.`)
  }

  try {
    await aborted(deps.signal)
  } finally {
    await stopServer(server, deps.drainMs ?? 3000)
    removePidIfOwned(paths.serverPid, deps.pid)
    deps.io.log('Amplifier distro server stopped.')
  }
}
