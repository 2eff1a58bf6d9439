/**
 * An AbortSignal that fires on the first SIGTERM or SIGINT. Long-running
 * commands take it as an argument, so tests can hand in their own.
 */
export function shutdownSignal(): AbortSignal {
  const controller = new AbortController()
  const stop = () => controller.abort()
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
  controller.signal.addEventListener('abort', () => {
    process.removeListener('SIGTERM', stop)
    process.removeListener('SIGINT', stop)
  })
  return controller.signal
}

/** Resolves when `signal` aborts (at once when it already has). */
export function aborted(signal: AbortSignal): Promise<void> {
  return signal.aborted ? Promise.resolve() : new Promise((resolve) => signal.addEventListener('abort', () => resolve(), {once: true}))
}
