import {closeSync, fstatSync, linkSync, mkdirSync, openSync, readFileSync, writeFileSync} from 'node:fs'
import {dirname} from 'node:path'

import {removeFile} from '../files.js'
import {isAlive} from './procs.js'

/** What a holder file held when it was read: its inode (to tell a new file from the old one) and its PID. */
export interface Held {
  ino: number
  /** Undefined when the file holds anything but a positive whole number. */
  pid: number | undefined
}

/** The highest PID Linux hands out (`pid_max` on 64-bit systems); macOS stays far below it. */
const MAX_PID = 4_194_304

/** Reads a holder file's PID from text: a positive whole number (surrounding whitespace allowed), else undefined. */
export function parsePid(text: string): number | undefined {
  const trimmed = text.trim()
  if (!/^\d{1,10}$/.test(trimmed)) return undefined
  const pid = Number(trimmed)
  return pid > 0 && pid <= MAX_PID ? pid : undefined
}

/** Reads `file` as a holder file; undefined when it does not exist or cannot be read. */
export function look(file: string): Held | undefined {
  let fd: number | undefined
  try {
    fd = openSync(file, 'r')
    const pid = parsePid(readFileSync(fd, 'utf8'))
    return {ino: fstatSync(fd).ino, pid}
  } catch {
    return undefined
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/**
 * Creates `file` holding `pid`, atomically and only if it does not exist:
 * the PID goes into a private file that is then hard-linked to `file`, so
 * the file is never visible without its holder's PID (a file created with
 * O_EXCL is empty until the write that follows, and a rival looking in
 * that moment would take it for an abandoned one). False when it exists.
 */
function createExclusive(file: string, pid: number): boolean {
  const own = `${file}.${pid}`
  try {
    writeFileSync(own, `${pid}\n`, {mode: 0o644})
    linkSync(own, file)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw error
  } finally {
    removeFile(own)
  }
}

/**
 * Removes a holder file found abandoned. Rivals that find it at the same
 * time must not each remove "the" file: the second would delete the file
 * the first has just created in its place. So removing needs the `.break`
 * guard, and under it the file is removed only while it is still the very
 * file (inode and PID) that was found abandoned.
 */
function removeAbandoned(file: string, seen: Held, pid: number): void {
  const guard = `${file}.break`
  if (!createExclusive(guard, pid)) {
    // Removing takes a few system calls; a guard whose holder is gone was left by a process killed meanwhile.
    const holder = look(guard)
    if (holder !== undefined && (holder.pid === undefined || !isAlive(holder.pid))) removeFile(guard)
    return
  }

  try {
    const now = look(file)
    if (now !== undefined && now.ino === seen.ino && now.pid === seen.pid) removeFile(file)
  } finally {
    removeFile(guard)
  }
}

/** One try at taking a holder file. */
export type Attempt =
  /** This process holds the file now. */
  | {kind: 'taken'}
  /** A live holder has it. */
  | {kind: 'held'; holder: Held}
  /** It was released, or found abandoned and removed (or being removed by a rival): try again soon. */
  | {kind: 'retry'}

/**
 * One try at taking `file` for `pid`:
 * 1. creates it exclusively, holding the PID from the first moment it exists
 *    (its folder is created as needed);
 * 2. when it exists, reads it: a file that `abandoned` says no one holds is
 *    removed, one rival at a time (see `removeAbandoned`), and the caller
 *    tries again.
 * Throws when the file cannot be created at all (permissions, a file where
 * its folder should be); a failure to remove an abandoned file is a retry,
 * which keeps failing until the caller gives up.
 */
export function tryTake(file: string, pid: number, abandoned: (held: Held) => boolean): Attempt {
  mkdirSync(dirname(file), {recursive: true})
  if (createExclusive(file, pid)) return {kind: 'taken'}
  const seen = look(file)
  if (seen === undefined) return {kind: 'retry'}
  if (!abandoned(seen)) return {kind: 'held', holder: seen}
  try {
    removeAbandoned(file, seen, pid)
  } catch {
    // Reported by the caller when the retries run out.
  }

  return {kind: 'retry'}
}
