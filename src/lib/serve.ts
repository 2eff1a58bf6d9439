import type {AddressInfo} from 'node:net'

import {UserError} from './errors.js'
import type {Io} from './io.js'
import {hostPort, pathsFor, serverUrl} from './paths.js'
import {readPid, removePidIfOwned, writePid} from './pidfile.js'
import {isToolProcess} from './procs.js'
import {createDistroServer, stopServer} from './server.js'
import {aborted} from './signals.js'
import {isLoopback, parsePort, validateHost} from './validate.js'

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
      return new UserError(`Cannot listen on ${where}: permission denied (ports below 1024 need privileges).`)
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
 * 1. Validates host and port before anything is bound or written.
 * 2. Refuses to start while `server.pid` names a live `amp-distro serve`.
 * 3. Listens, then writes `server.pid` (a stale one is replaced).
 * 4. On stop: closes the listener, lets open requests finish for up to
 *    `drainMs` (see `stopServer`), then removes its own PID file.
 */
export async function serve(flags: ServeFlags, deps: ServeDeps): Promise<void> {
  const host = validateHost(flags.host)
  const port = parsePort(flags.port)
  const paths = pathsFor(deps.home)

  const holder = readPid(paths.serverPid)
  if (holder !== undefined && holder !== deps.pid && isToolProcess(holder, 'serve')) {
    throw new UserError(`amp-distro serve is already running (PID ${holder}); its PID file is ${paths.serverPid}.`)
  }

  const server = createDistroServer({name: 'Amplifier distro server', version: deps.version, pid: deps.pid, now: () => performance.now()})
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(listenError(error, host, port)))
    server.listen({host, port, exclusive: true}, resolve)
  })
  const bound = (server.address() as AddressInfo).port
  try {
    writePid(paths.serverPid, deps.pid)
  } catch (error) {
    await stopServer(server, 0)
    throw new UserError(`Cannot write the PID file ${paths.serverPid}: ${(error as Error).message}`)
  }

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
