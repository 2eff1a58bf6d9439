import {appendFileSync, mkdirSync, renameSync, statSync} from 'node:fs'
import {dirname} from 'node:path'

export type LogLevel = 'info' | 'warn' | 'error'

/** Where a long-running command's log lines go. */
export interface Logger {
  info(message: string): void
  warn(message: string): void
  error(message: string): void
}

export interface FileLoggerOptions {
  /** The log file; its folder is created on first write. */
  file: string
  /** A line that would take the file past this many bytes rotates it first. */
  maxBytes?: number
  /** How many rotated files to keep (`<file>.1` is the newest). */
  keep?: number
  /**
   * Receives every line as well (stderr in the CLI, which is the journal
   * under systemd). Absent: lines go to the file only, and a file that cannot
   * be written is reported on stderr.
   */
  echo?: (line: string) => void
  /** Wall clock for the timestamps. */
  now?: () => Date
}

/** 5 MiB: the watchdog logs only state changes, so this holds a long history. */
export const DEFAULT_MAX_LOG_BYTES = 5 * 1024 * 1024

function sizeOf(file: string): number {
  try {
    return statSync(file).size
  } catch {
    return 0
  }
}

/** How many rotated files a file logger keeps by default. */
export const DEFAULT_KEEP_LOGS = 2

/** The files `file` is rotated to, newest first: `<file>.1` … `<file>.<keep>`. */
export function rotatedLogFiles(file: string, keep = DEFAULT_KEEP_LOGS): string[] {
  return Array.from({length: keep}, (_, i) => `${file}.${i + 1}`)
}

/** Shifts `<file>.1` … `<file>.<keep-1>` up by one (dropping the oldest) and moves `file` to `<file>.1`. */
export function rotateLog(file: string, keep: number): void {
  for (let i = keep - 1; i >= 1; i--) {
    try {
      renameSync(`${file}.${i}`, `${file}.${i + 1}`)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
  }

  if (keep >= 1) renameSync(file, `${file}.1`)
}

/**
 * A logger that writes `<ISO time> <LEVEL> <message>` lines to `file` and
 * echoes `<LEVEL> <message>` to `echo`, if given. Before a line would take the file
 * past `maxBytes` (5 MiB), the file is rotated, keeping `keep` (2) old
 * files. A file that cannot be written (full disk, permissions) is reported
 * once (through `echo`, or stderr without one) and never stops the caller.
 */
export function createFileLogger(options: FileLoggerOptions): Logger {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_LOG_BYTES
  const keep = options.keep ?? DEFAULT_KEEP_LOGS
  const {echo} = options
  const report = echo ?? ((line: string) => process.stderr.write(`${line}\n`))
  const now = options.now ?? (() => new Date())
  let fileFailed = false

  const write = (level: LogLevel, message: string) => {
    const tag = level.toUpperCase()
    echo?.(`${tag} ${message}`)
    const line = `${now().toISOString()} ${tag} ${message}\n`
    try {
      mkdirSync(dirname(options.file), {recursive: true})
      const size = sizeOf(options.file)
      if (size > 0 && size + Buffer.byteLength(line) > maxBytes) rotateLog(options.file, keep)
      appendFileSync(options.file, line, {mode: 0o644})
      fileFailed = false
    } catch (error) {
      if (!fileFailed) report(`WARN cannot write ${options.file}: ${(error as Error).message}`)
      fileFailed = true
    }
  }

  return {
    info: (message) => write('info', message),
    warn: (message) => write('warn', message),
    error: (message) => write('error', message),
  }
}
