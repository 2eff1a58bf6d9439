import {closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, writeSync} from 'node:fs'
import {dirname} from 'node:path'

/**
 * 5 MiB: the most any regular file that the server or the watchdog writes
 * to as stdout or stderr (launchd's `StandardOutPath`/`StandardErrorPath`,
 * crash.log) may hold. Their output is a line per start, stop and failure,
 * so this is a long history.
 */
export const MAX_OUTPUT_BYTES = 5 * 1024 * 1024

/** How often a running process looks at the size of its output files. */
const OUTPUT_CHECK_MS = 60_000

/** True when `fd` is a regular file (not a pipe, a terminal or a socket such as the journal's). */
export function isRegularFile(fd: number): boolean {
  try {
    return fstatSync(fd).isFile()
  } catch {
    return false
  }
}

/**
 * Empties `fd` in place when it is a regular file larger than `maxBytes`,
 * then writes one line saying so; true when it did. In place, because the
 * writer keeps its descriptor: launchd holds the files it opened for a job
 * for as long as the job is loaded, so renaming them away would free
 * nothing. They are opened for appending (launchd, and this tool for
 * crash.log), so the next write lands at the new end, not at the old offset.
 */
export function truncateIfOver(fd: number, maxBytes: number, now: () => Date = () => new Date()): boolean {
  let size: number
  try {
    const stat = fstatSync(fd)
    if (!stat.isFile()) return false
    size = stat.size
  } catch {
    return false
  }

  if (size <= maxBytes) return false
  ftruncateSync(fd, 0)
  writeSync(fd, `--- ${now().toISOString()} amp-distro emptied this file: it had grown past ${maxBytes} bytes ---\n`)
  return true
}

/**
 * Keeps the regular files behind `fds` (stdout and stderr in the CLI) under
 * `maxBytes`: checks at once and then every `everyMs`, on a timer that does
 * not keep the process alive. Returns the function that stops the checks.
 * A file that cannot be truncated is left as it is.
 */
export function boundOutput(fds: readonly number[], maxBytes = MAX_OUTPUT_BYTES, everyMs = OUTPUT_CHECK_MS): () => void {
  const check = () => {
    for (const fd of fds) {
      try {
        truncateIfOver(fd, maxBytes)
      } catch {
        // A read-only or vanished file: nothing this process can do about its size.
      }
    }
  }

  check()
  const timer = setInterval(check, everyMs)
  timer.unref()
  return () => clearInterval(timer)
}

/**
 * Opens `file` for appending (mode 0644, its folder created as needed),
 * first emptying it when it is over `maxBytes`, as `truncateIfOver` does.
 * For the output of a detached server: the server then keeps it bounded itself.
 */
export function openBoundedAppend(file: string, maxBytes = MAX_OUTPUT_BYTES): number {
  mkdirSync(dirname(file), {recursive: true})
  const fd = openSync(file, 'a', 0o644)
  try {
    truncateIfOver(fd, maxBytes)
  } catch (error) {
    closeSync(fd)
    throw error
  }

  return fd
}
