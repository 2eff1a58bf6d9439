/**
 * A client load for recovery tests and benchmarks: a new connection to
 * 127.0.0.1:port every `everyMs` (20 ms: 50 a second), each one
 * `GET /api/health` with `Connection: close`, bounded in count in flight and
 * in time per request. Each answer is kept with when it started and ended
 * and which PID answered, so a test can count the refused and reset ones
 * and find the slowest answer around an event.
 */
import {request} from 'node:http'

export interface Sample {
  /** performance.now() when the connection was opened. */
  start: number
  end: number
  /** The PID in the health answer. */
  pid?: number
  /** `ECONNREFUSED`, `ECONNRESET`, `timeout`, … */
  error?: string
}

export interface LoadOptions {
  /** Milliseconds between new connections (default 20). */
  everyMs?: number
  /** A request that has no answer after this many ms counts as `timeout` (default 10 000). */
  timeoutMs?: number
  /** At most this many requests in flight; a tick with that many waiting opens none (default 500). */
  maxInFlight?: number
}

export interface Load {
  readonly samples: Sample[]
  /** Stops opening connections, waits for those in flight, and returns every sample. */
  stop(): Promise<Sample[]>
}

function once(port: number, timeoutMs: number): Promise<Sample> {
  const start = performance.now()
  return new Promise((resolve) => {
    const done = (rest: Omit<Sample, 'start' | 'end'>) => resolve({start, end: performance.now(), ...rest})
    const req = request({host: '127.0.0.1', port, path: '/api/health', agent: false, headers: {Connection: 'close'}, timeout: timeoutMs}, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () => {
        try {
          const pid = (JSON.parse(body) as {pid?: unknown}).pid
          done(res.statusCode === 200 && typeof pid === 'number' ? {pid} : {error: `HTTP ${res.statusCode}`})
        } catch {
          done({error: `HTTP ${res.statusCode}, not JSON`})
        }
      })
      res.on('error', (error: NodeJS.ErrnoException) => done({error: error.code ?? error.message}))
    })
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), {code: 'timeout'})))
    req.on('error', (error: NodeJS.ErrnoException) => done({error: error.code ?? error.message}))
    req.end()
  })
}

/** Starts the load on 127.0.0.1:`port`. */
export function startLoad(port: number, options: LoadOptions = {}): Load {
  const samples: Sample[] = []
  const pending = new Set<Promise<void>>()
  const timer = setInterval(() => {
    if (pending.size >= (options.maxInFlight ?? 500)) return
    const one: Promise<void> = once(port, options.timeoutMs ?? 10_000).then((sample) => {
      samples.push(sample)
      pending.delete(one)
    })
    pending.add(one)
  }, options.everyMs ?? 20)
  return {
    samples,
    async stop() {
      clearInterval(timer)
      await Promise.all(pending)
      return samples
    },
  }
}

export interface LoadSummary {
  requests: number
  answered: number
  refused: number
  /** Connections the server accepted and then closed without an answer (ECONNRESET, socket hang up). */
  reset: number
  /** Every other failure, by error. */
  other: Record<string, number>
  /** Milliseconds of the slowest answered request. */
  slowestMs: number
}

/** Counts what the samples came to. */
export function summarize(samples: Sample[]): LoadSummary {
  const other: Record<string, number> = {}
  let refused = 0
  let reset = 0
  for (const sample of samples) {
    if (sample.error === undefined) continue
    if (sample.error === 'ECONNREFUSED') refused++
    else if (sample.error === 'ECONNRESET' || sample.error === 'socket hang up') reset++
    else other[sample.error] = (other[sample.error] ?? 0) + 1
  }

  const answered = samples.filter((sample) => sample.pid !== undefined)
  return {
    requests: samples.length,
    answered: answered.length,
    refused,
    reset,
    other,
    slowestMs: Math.round(Math.max(0, ...answered.map((sample) => sample.end - sample.start))),
  }
}

/** Milliseconds from `at` until a PID other than `pid` first answered a request (one queued before `at` counts); undefined when none was. */
export function timeToNewPid(samples: Sample[], at: number, pid: number): number | undefined {
  const answers = samples.filter((sample) => sample.end >= at && sample.pid !== undefined && sample.pid !== pid).map((sample) => sample.end - at)
  return answers.length === 0 ? undefined : Math.min(...answers)
}
