import {request} from 'node:http'

/** What the server says about itself in a 200 answer of `/api/health`. */
export interface HealthBody {
  pid?: number
  version?: string
  uptimeSeconds?: number
}

export interface HealthAnswer {
  healthy: boolean
  /** HTTP status, when the server answered at all. */
  status?: number
  /** Why it is not healthy: `timeout`, a connection error code, or `HTTP <status>`. */
  reason?: string
  /** A healthy answer's JSON fields that tell which server answered (absent when the body was not that JSON). */
  body?: HealthBody
}

/** Keeps the fields of a health body that have the expected types. */
function readBody(text: string): HealthBody | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return undefined
  }

  if (parsed === null || typeof parsed !== 'object') return undefined
  const {pid, version, uptimeSeconds} = parsed as Record<string, unknown>
  return {
    ...(Number.isSafeInteger(pid) ? {pid: pid as number} : {}),
    ...(typeof version === 'string' ? {version} : {}),
    ...(typeof uptimeSeconds === 'number' && Number.isFinite(uptimeSeconds) ? {uptimeSeconds} : {}),
  }
}

/** Bodies larger than this are not read (a health answer is about a hundred bytes). */
const MAX_BODY_BYTES = 64 * 1024

/**
 * Asks `url` (an `http://host:port/api/health` address) once. Only a 200
 * within `timeoutMs` counts as healthy; the connection is never reused.
 * `signal` ends the question at once (reason `ABORT_ERR`).
 */
export function checkHealth(url: string, timeoutMs = 3000, signal?: AbortSignal): Promise<HealthAnswer> {
  return new Promise((resolve) => {
    const req = request(url, {method: 'GET', agent: false, headers: {Connection: 'close'}, timeout: timeoutMs, ...(signal ? {signal} : {})}, (res) => {
      const status = res.statusCode ?? 0
      if (status !== 200) {
        res.resume()
        resolve({healthy: false, status, reason: `HTTP ${status}`})
        return
      }

      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        text += chunk
        if (text.length > MAX_BODY_BYTES) res.destroy()
      })
      res.on('close', () => {
        const body = text.length > MAX_BODY_BYTES ? undefined : readBody(text)
        resolve({healthy: true, status, ...(body ? {body} : {})})
      })
    })
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), {code: 'timeout'})))
    req.on('error', (error: NodeJS.ErrnoException) => resolve({healthy: false, reason: error.code ?? error.message}))
    req.end()
  })
}
