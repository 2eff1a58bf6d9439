import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'

export interface ServerInfo {
  name: string
  version: string
  pid: number
  /** Monotonic clock in milliseconds, for uptime. */
  now: () => number
}

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

  const server = createServer({headersTimeout: 10_000, requestTimeout: 15_000, keepAliveTimeout: 5000, maxHeaderSize: 16_384}, handler)
  server.timeout = 30_000
  return server
}

/**
 * Stops `server` gracefully:
 * 1. stops accepting connections and closes idle keep-alive ones;
 * 2. answers requests still arriving on open connections with
 *    `Connection: close`, so no client can hold the stop open by keeping
 *    its connection alive;
 * 3. after `drainMs`, closes whatever is still open.
 * Resolves once every connection is closed.
 */
export function stopServer(server: Server, drainMs: number): Promise<void> {
  return new Promise((resolve) => {
    server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => res.setHeader('Connection', 'close'))
    const force = setTimeout(() => server.closeAllConnections(), drainMs)
    server.close(() => {
      clearTimeout(force)
      resolve()
    })
    server.closeIdleConnections()
  })
}
