/**
 * An AbortSignal that fires on the first SIGTERM or SIGINT. Long-running
 * commands take it as an argument, so tests can hand in their own.
 *
 * The handlers stay installed for the life of the process: a second signal
 * during shutdown (Ctrl-C pressed twice, a supervisor repeating its stop)
 * is absorbed instead of killing the process mid-cleanup, which would leave
 * its PID file behind and look like a crash to the supervisor. Shutdown is
 * bounded by the command itself, and SIGKILL still ends it at once.
 */
export function shutdownSignal(): AbortSignal {
  const controller = new AbortController()
  const stop = () => controller.abort()
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  return controller.signal
}

/** Resolves when `signal` aborts (at once when it already has). */
export function aborted(signal: AbortSignal): Promise<void> {
  return signal.aborted ? Promise.resolve() : new Promise((resolve) => signal.addEventListener('abort', () => resolve(), {once: true}))
}
