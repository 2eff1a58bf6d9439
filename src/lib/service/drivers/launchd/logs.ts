import {closeSync, fstatSync, openSync, readSync} from 'node:fs'
import {basename} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {rotatedLogFiles} from '../../../watchdog/logger.js'
import type {Paths} from '../../../paths.js'
import type {LogLine, LogsOptions} from '../../types.js'

/** A log file `service logs` reads, and the files it is rotated to, newest first. */
export interface LogFile {
  file: string
  rotated?: string[]
}

/**
 * The files `service logs` reads under launchd: the four the plists name as
 * StandardOutPath and StandardErrorPath, then the watchdog's own log, which
 * the watchdog rotates to `watchdog.log.1` and `.2`.
 */
export function launchdLogFiles(paths: Paths): LogFile[] {
  return [
    ...[paths.serverStdoutLog, paths.serverStderrLog, paths.watchdogStdoutLog, paths.watchdogStderrLog].map((file) => ({file})),
    {file: paths.watchdogLog, rotated: rotatedLogFiles(paths.watchdogLog)},
  ]
}

/** The line as `service logs` prints it: marked with the file it came from. */
export function logLine(file: string, text: string): LogLine {
  const source = basename(file)
  return {source, text: `[${source}] ${text}`}
}

const CHUNK = 64 * 1024

/** Reads `length` bytes of an open file from `position`. */
function readRange(fd: number, position: number, length: number): Buffer {
  const buffer = Buffer.alloc(length)
  let done = 0
  while (done < length) {
    const read = readSync(fd, buffer, done, length - done, position + done)
    if (read === 0) break
    done += read
  }

  return buffer.subarray(0, done)
}

/** The last `count` lines of the first `size` bytes of an open file, read backwards in chunks. */
function lastLinesOf(fd: number, size: number, count: number): string[] {
  if (count === 0 || size === 0) return []
  let start = size
  let text = Buffer.alloc(0)
  // One line more than asked for: the first one read may be cut.
  while (start > 0 && text.filter((byte) => byte === 0x0a).length <= count) {
    const from = Math.max(0, start - CHUNK)
    text = Buffer.concat([readRange(fd, from, start - from), text])
    start = from
  }

  const lines = text.toString('utf8').split('\n')
  if (lines.at(-1) === '') lines.pop()
  return lines.slice(-count)
}

interface Tail {
  file: string
  /** The file as last opened: a new inode means it was replaced (watchdog.log rotates by renaming). */
  ino?: number
  /** Bytes already read. */
  offset: number
  /** The start of a line whose end has not been written yet. */
  partial: string
  /** When the file last changed, for the merge order. */
  mtimeMs: number
  lines: string[]
  /** Lines from the files it was rotated to, oldest first, each marked with its own file. */
  earlier: LogLine[]
}

/**
 * Opens a file and reads its last `count` lines, remembering where the
 * reading stopped. With `holdPartial` (a follow), a last line that has no
 * newline yet is kept back until its end is written.
 */
function openFile(file: string, count: number, holdPartial = false): Tail {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch {
    return {file, offset: 0, partial: '', mtimeMs: 0, lines: [], earlier: []}
  }

  try {
    const stat = fstatSync(fd)
    const lines = lastLinesOf(fd, stat.size, count)
    const cut = holdPartial && stat.size > 0 && readRange(fd, stat.size - 1, 1)[0] !== 0x0a
    const partial = cut ? (lines.pop() ?? '') : ''
    return {file, ino: stat.ino, offset: stat.size, partial, mtimeMs: stat.mtimeMs, lines, earlier: []}
  } finally {
    closeSync(fd)
  }
}

/**
 * `openFile` for a log that may have been rotated: while the current file
 * holds fewer than `count` lines, the older ones come from the files it was
 * rotated to, newest first, until `count` lines are read. A follow reads on
 * from the current file only.
 */
function openTail(log: LogFile, count: number, holdPartial = false): Tail {
  const tail = openFile(log.file, count, holdPartial)
  for (const older of log.rotated ?? []) {
    const missing = count - tail.lines.length - tail.earlier.length
    if (missing <= 0) break
    const before = openFile(older, missing)
    tail.earlier = [...before.lines.map((text) => logLine(older, text)), ...tail.earlier]
    tail.mtimeMs = Math.max(tail.mtimeMs, before.mtimeMs)
  }

  return tail
}

/**
 * The lines written to a followed file since the last call. A file that is
 * shorter than what was read was truncated in place (the server and the
 * watchdog do that at their size limit, since launchd keeps the
 * descriptor), and a file with a new inode was replaced: both are read again
 * from the start.
 */
function readNew(tail: Tail): string[] {
  let fd: number
  try {
    fd = openSync(tail.file, 'r')
  } catch {
    tail.ino = undefined
    tail.offset = 0
    return []
  }

  try {
    const stat = fstatSync(fd)
    if (stat.ino !== tail.ino || stat.size < tail.offset) {
      tail.ino = stat.ino
      tail.offset = 0
      tail.partial = ''
    }

    if (stat.size === tail.offset) return []
    const text = tail.partial + readRange(fd, tail.offset, stat.size - tail.offset).toString('utf8')
    tail.offset = stat.size
    const lines = text.split('\n')
    tail.partial = lines.pop() ?? ''
    return lines
  } finally {
    closeSync(fd)
  }
}

export interface ReadLogsOptions extends LogsOptions {
  /** How often a follow looks for new lines, in ms. */
  pollMs?: number
  /** Waits between two looks; rejects when `signal` fires (tests pass one they control). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<unknown>
}

/**
 * Prints the last lines of several log files, oldest first, then (with
 * `follow`) new lines as they are written, until `signal` fires. Resolves to
 * the number of lines printed. A rotated file's older lines are read from
 * the files it was rotated to, as `openTail` says.
 *
 * Merge order: only watchdog.log stamps its lines with a time, so lines
 * cannot be interleaved across files. Each file's lines stay together and
 * in their own order, and the files follow one another by when they last
 * changed, the most recently written last; `lines` counts from the end of
 * that sequence. While following, new lines are printed in the order they
 * are found.
 *
 * Steps:
 * 1. open each file, read its last `lines` lines (from its rotated files
 *    too, when it holds fewer) and note its size and inode;
 * 2. order the files by modification time and print the last `lines` lines;
 * 3. with `follow`, every `pollMs` read what each file gained, from the start
 *    again for a file truncated in place or replaced, printing whole lines.
 */
export async function readLogs(files: LogFile[], options: ReadLogsOptions): Promise<number> {
  const tails = files.map((file) => openTail(file, options.lines, options.follow))
  let printed = 0
  for (const line of merged(tails, options.lines)) {
    options.write(line)
    printed++
  }

  if (!options.follow) return printed
  const pollMs = options.pollMs ?? 250
  const wait = options.sleep ?? ((ms: number, signal: AbortSignal) => sleep(ms, undefined, {signal}))
  while (!options.signal.aborted) {
    try {
      await wait(pollMs, options.signal)
    } catch {
      break
    }

    for (const tail of tails) {
      for (const text of readNew(tail)) {
        options.write(logLine(tail.file, text))
        printed++
      }
    }
  }

  return printed
}

/** The last `count` lines of the files' tails, in the merge order `readLogs` describes. */
function merged(tails: Tail[], count: number): LogLine[] {
  if (count === 0) return []
  return [...tails]
    .filter((tail) => tail.lines.length + tail.earlier.length > 0)
    .sort((a, b) => a.mtimeMs - b.mtimeMs)
    .flatMap((tail) => [...tail.earlier, ...tail.lines.map((text) => logLine(tail.file, text))])
    .slice(-count)
}

/** The last `count` lines of several files, merged as `readLogs` merges them. */
export function recentLines(files: string[], count: number): LogLine[] {
  return merged(
    files.map((file) => openFile(file, count)),
    count,
  )
}

/** The last `count` lines of one file (none when it cannot be read). */
export function lastLines(file: string, count: number): string[] {
  return openFile(file, count).lines
}
