import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'

export interface ServerInfo {
  name: string
  version: string
  pid: number
  /** Monotonic clock in milliseconds, for uptime. */
  now: () => number
}

/**
 * Bounds on slow, stuck or oversized clients. Node checks the header and
 * request deadlines only every `checkIntervalMs` (30 s by default), so a
 * stuck connection lives at most `headersTimeoutMs + checkIntervalMs`. The
 * check runs on a timer even while no one is connected; every 5 s keeps an
 * idle server nearly asleep (every second cost it about 0.1 CPU s a minute).
 */
export const SERVER_LIMITS = {
  /** A request's headers must be complete within this (a loopback client needs well under a millisecond). */
  headersTimeoutMs: 5000,
  /** The whole request, body included, within this. */
  requestTimeoutMs: 10_000,
  /** An idle kept-alive connection is closed after this. */
  keepAliveTimeoutMs: 5000,
  checkIntervalMs: 5000,
  /** A socket with no traffic at all in either direction is closed after this. */
  socketIdleTimeoutMs: 30_000,
  /** Larger headers are answered 431 and the connection closed. */
  maxHeaderBytes: 16_384,
} as const

function send(res: ServerResponse, status: number, type: string, body: string, head: boolean): void {
  res.writeHead(status, {
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(body),
    'Content-Type': type,
  })
  res.end(head ? undefined : body)
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/**
 * Builds the distro server: `GET|HEAD /api/health` answers JSON, other
 * `/api/` paths a JSON 404, `/` a small status page. Timeouts bound slow
 * or stuck clients so they cannot hold connections forever.
 */
export function createDistroServer(info: ServerInfo): Server {
  const started = info.now()
  const uptimeSeconds = () => Math.floor((info.now() - started) / 1000)
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?', 1)[0]
    const head = req.method === 'HEAD'
    const readOnly = head || req.method === 'GET'
    if (path === '/api/health') {
      if (!readOnly) {
        res.setHeader('Allow', 'GET, HEAD')
        send(res, 405, 'application/json', JSON.stringify({error: 'method not allowed'}), false)
        return
      }

      const body = JSON.stringify({status: 'ok', name: info.name, version: info.version, pid: info.pid, uptimeSeconds: uptimeSeconds()})
      send(res, 200, 'application/json', body, head)
      return
    }

    if (path.startsWith('/api/') || path === '/api') {
      send(res, 404, 'application/json', JSON.stringify({error: 'not found', path}), head)
      return
    }

    if (path === '/' && readOnly) {
      const name = escapeHtml(info.name)
      const body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${name}</title></head>
<body><h1>${name}</h1>
<p>Version ${escapeHtml(info.version)}, up ${uptimeSeconds()} s.</p>
<p>Health: <a href="/api/health">/api/health</a></p>
</body></html>
`
      send(res, 200, 'text/html; charset=utf-8', body, head)
      return
    }

    send(res, 404, 'text/plain; charset=utf-8', 'Not found\n', head)
  }

  const server = createServer(
    {
      headersTimeout: SERVER_LIMITS.headersTimeoutMs,
      requestTimeout: SERVER_LIMITS.requestTimeoutMs,
      keepAliveTimeout: SERVER_LIMITS.keepAliveTimeoutMs,
      connectionsCheckingInterval: SERVER_LIMITS.checkIntervalMs,
      maxHeaderSize: SERVER_LIMITS.maxHeaderBytes,
    },
    handler,
  )
  server.timeout = SERVER_LIMITS.socketIdleTimeoutMs
  return server
}

/**
 * Resolves once Node has run a whole poll phase that began after the call,
 * so bytes that had already arrived on open connections are read and parsed.
 * A poll phase in progress may have collected its ready sockets before those
 * bytes came; the first immediate runs after it, the second after the next.
 */
function afterPendingReads(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)))
}

/**
 * Stops `server` gracefully:
 * 1. answers requests still arriving on open connections with
 *    `Connection: close`, so no client can hold the stop open by keeping
 *    its connection alive;
 * 2. lets Node read what has already arrived on open connections: since
 *    Node 26, `close()` closes a connection whose parser has seen no byte
 *    yet as idle (nodejs/node#63470), which would drop a request whose first
 *    bytes are waiting unread in the socket;
 * 3. stops accepting connections and closes idle keep-alive ones;
 * 4. after `drainMs`, closes whatever is still open.
 * Resolves once every connection is closed.
 */
export async function stopServer(server: Server, drainMs: number): Promise<void> {
  server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => res.setHeader('Connection', 'close'))
  await afterPendingReads()
  await new Promise<void>((resolve) => {
    const force = setTimeout(() => server.closeAllConnections(), drainMs)
    server.close(() => {
      clearTimeout(force)
      resolve()
    })
  })
}
