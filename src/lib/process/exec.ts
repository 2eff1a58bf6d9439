import type {Exec, StreamLines} from '../service/types.js'

// node:child_process and node:readline load on first use: a command that
// runs no program (`service status` with nothing installed) never pays for them.
const childProcess = () => process.getBuiltinModule('node:child_process')

/** The real command runner: `execFile`, with failures to start (and a program killed at `timeoutMs`) reported as exit code 127. */
export const execCommand: Exec = (file, args, options = {}) =>
  new Promise((resolve) => {
    const limits = {maxBuffer: 4 * 1024 * 1024, timeout: options.timeoutMs ?? 0, killSignal: 'SIGKILL' as const}
    childProcess().execFile(file, args, {env: options.env ?? process.env, encoding: 'utf8', ...limits}, (error, stdout, stderr) => {
      if (!error) {
        resolve({code: 0, stdout, stderr})
        return
      }

      const code = typeof error.code === 'number' ? error.code : 127
      resolve({code, stdout: stdout ?? '', stderr: stderr || (code === 127 ? String(error.message) : '')})
    })
  })

/**
 * The real line streamer: `spawn`, stdout read line by line, stderr
 * collected. A program ended by `signal` (SIGTERM) counts as exit 0; one
 * that cannot be started resolves to 127.
 */
export const streamLines: StreamLines = (file, args, options) =>
  new Promise((resolve) => {
    let stderr = ''
    const child = childProcess().spawn(file, args, {env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe']})
    const stop = () => child.kill('SIGTERM')
    options.signal?.addEventListener('abort', stop, {once: true})
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
    })
    const lines = process.getBuiltinModule('node:readline').createInterface({input: child.stdout, crlfDelay: Number.POSITIVE_INFINITY})
    lines.on('line', options.onLine)
    child.once('error', (error) => {
      options.signal?.removeEventListener('abort', stop)
      resolve({code: 127, stdout: '', stderr: error.message})
    })
    child.once('close', (code) => {
      options.signal?.removeEventListener('abort', stop)
      resolve({code: options.signal?.aborted ? 0 : (code ?? 1), stdout: '', stderr})
    })
  })
