import {connect} from 'node:net'

/**
 * True when something accepts TCP connections on `host:port` within
 * `timeoutMs`. Only connects and hangs up: unlike a trial bind, it cannot
 * take the port from a server that is starting at that moment.
 */
export function acceptsConnections(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({host, port})
    const done = (accepted: boolean) => {
      socket.destroy()
      resolve(accepted)
    }

    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}
