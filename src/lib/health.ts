import {request} from 'node:http'

export interface HealthAnswer {
  healthy: boolean
  /** HTTP status, when the server answered at all. */
  status?: number
  /** Why it is not healthy: `timeout`, a connection error code, or `HTTP <status>`. */
  reason?: string
}

/**
 * Asks `url` (an `http://host:port/api/health` address) once. Only a 200
 * within `timeoutMs` counts as healthy; the connection is never reused.
 */
export function checkHealth(url: string, timeoutMs = 3000): Promise<HealthAnswer> {
  return new Promise((resolve) => {
    const req = request(url, {method: 'GET', agent: false, headers: {Connection: 'close'}, timeout: timeoutMs}, (res) => {
      res.resume()
      const status = res.statusCode ?? 0
      resolve(status === 200 ? {healthy: true, status} : {healthy: false, status, reason: `HTTP ${status}`})
    })
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), {code: 'timeout'})))
    req.on('error', (error: NodeJS.ErrnoException) => resolve({healthy: false, reason: error.code ?? error.message}))
    req.end()
  })
}
