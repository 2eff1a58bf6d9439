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
 * Runs the distro server until `deps.signal` fires.
 *
 * 1. Validates host and port before anything is bound or written; an
 *    invalid one is a configuration error (exit 78, `EXIT_CONFIG`).
 * 2. Claims `server.pid` exclusively (see `claimPidFile`): of two servers
 *    started at once for one home, whatever their ports, one gets it and
 *    the other fails with "already running"; a stale file is taken over.
 * 3. Listens; when that fails, removes its own PID file and reports why.
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

  const server = createDistroServer({name: 'Amplifier distro server', version: deps.version, pid: deps.pid, now: () => performance.now()})
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => reject(listenError(error, host, port)))
      server.listen({host, port, exclusive: true}, resolve)
    })
  } catch (error) {
    removePidIfOwned(paths.serverPid, deps.pid)
    throw error
  }

  const bound = (server.address() as AddressInfo).port
  deps.io.log(`Amplifier distro server ${deps.version} listening on ${serverUrl(host, bound)} (PID ${deps.pid})`)
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
