import {execFile} from 'node:child_process'

/** What one wrk run measured. Latencies in milliseconds. */
export interface WrkResult {
  requestsPerSecond: number
  p50Ms: number
  p99Ms: number
  requests: number
  /** Non-2xx/3xx answers plus socket errors: anything but 0 makes the run invalid. */
  errors: number
}

const UNIT_MS: Record<string, number> = {us: 0.001, ms: 1, s: 1000, m: 60_000}

function toMs(value: string, unit: string): number {
  const factor = UNIT_MS[unit]
  if (factor === undefined) throw new Error(`unknown wrk time unit ${JSON.stringify(unit)}`)
  return Number(value) * factor
}

/** Parses the text wrk prints with `--latency`. Throws when a figure is missing rather than guessing. */
export function parseWrk(text: string): WrkResult {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(text)
  const p50 = /^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(text)
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(text)
  const total = /^\s+(\d+) requests in /m.exec(text)
  if (!rps || !p50 || !p99 || !total) throw new Error(`could not read wrk's output:\n${text}`)
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(text)
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text)
  const socketErrors = socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0
  return {
    requestsPerSecond: Number(rps[1]),
    p50Ms: toMs(p50[1], p50[2]),
    p99Ms: toMs(p99[1], p99[2]),
    requests: Number(total[1]),
    errors: (non2xx ? Number(non2xx[1]) : 0) + socketErrors,
  }
}

/** Runs `wrk -t1 -c<connections> -d<seconds>s --latency <url>` and parses its report. */
export function runWrk(url: string, options: {connections: number; seconds: number}): Promise<WrkResult> {
  const args = ['-t1', `-c${options.connections}`, `-d${options.seconds}s`, '--latency', url]
  return new Promise((resolve, reject) => {
    execFile('wrk', args, {encoding: 'utf8', timeout: (options.seconds + 30) * 1000}, (error, stdout, stderr) => {
      if (error) {
        const missing = (error as NodeJS.ErrnoException).code === 'ENOENT'
        reject(new Error(missing ? 'wrk is not installed (Debian: apt-get install wrk)' : `wrk failed: ${stderr || error.message}`))
        return
      }

      try {
        resolve(parseWrk(stdout))
      } catch (parseError) {
        reject(parseError)
      }
    })
  })
}
