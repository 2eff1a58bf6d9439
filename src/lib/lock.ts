import {closeSync, fstatSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync} from 'node:fs'
import {dirname} from 'node:path'

import {UserError} from './errors.js'
import {removeFile} from './files.js'
import {isAlive} from './procs.js'

export interface LockOptions {
  /** How long to wait for another holder, in ms. */
  timeoutMs?: number
  pid?: number
  sleep?: (ms: number) => Promise<void>
}

/** What a lock file held when it was read: its inode (to tell a new lock from the old one) and its PID. */
interface Seen {
  ino: number
  pid: number | undefined
}

function look(file: string): Seen | undefined {
  let fd: number | undefined
  try {
    fd = openSync(file, 'r')
    const pid = Number(readFileSync(fd, 'utf8').trim())
    return {ino: fstatSync(fd).ino, pid: Number.isInteger(pid) && pid > 0 ? pid : undefined}
  } catch {
    return undefined
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/**
 * Creates `file` holding `pid`, atomically and only if it does not exist:
 * the PID goes into a private file that is then hard-linked to `file`, so
 * the lock is never visible without its holder's PID (a lock created with
 * O_EXCL is empty until the write that follows, and a waiter looking in
 * that moment would take it for an abandoned one). False when it exists.
 */
function create(file: string, pid: number): boolean {
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

const abandoned = (seen: Seen) => seen.pid === undefined || !isAlive(seen.pid)

/**
 * Removes a lock left by a dead process (or holding no PID). Waiters that
 * find it at the same time must not each remove "the" lock: the second one
 * would delete the lock the first has just taken in its place. So removing
 * needs the `.break` guard, and under it the lock is removed only while it
 * is still the very file (inode and PID) that was found abandoned.
 */
function removeAbandoned(file: string, seen: Seen, pid: number): void {
  const guard = `${file}.break`
  if (!create(guard, pid)) {
    // Removing takes a few system calls; a guard whose holder is gone was left by a process killed meanwhile.
    const holder = look(guard)
    if (holder !== undefined && abandoned(holder)) removeFile(guard)
    return
  }

  try {
    const now = look(file)
    if (now !== undefined && now.ino === seen.ino && now.pid === seen.pid) removeFile(file)
  } finally {
    removeFile(guard)
  }
}

/**
 * Runs `work` while holding an exclusive lock file, so two installs (or an
 * install and an uninstall) of the same home never interleave their steps.
 *
 * 1. Creates `file`, holding this process's PID from the first moment it exists.
 * 2. While another live process holds it, waits (up to `timeoutMs`); a lock
 *    left by a dead process, or one with no readable PID, is removed (one
 *    waiter at a time, see `removeAbandoned`) and taking it is tried again.
 * 3. Removes the lock after `work`, whether it succeeded or not.
 */
export async function withLock<T>(file: string, work: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const pid = options.pid ?? process.pid
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)))
  const deadline = Date.now() + (options.timeoutMs ?? 60_000)
  for (;;) {
    try {
      mkdirSync(dirname(file), {recursive: true})
      if (create(file, pid)) break
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message
      throw new UserError(`Cannot create the service lock ${file} (${reason}).`, {details: [`Make sure ${dirname(file)} is a writable folder.`]})
    }

    const seen = look(file)
    const stale = seen !== undefined && abandoned(seen)
    if (stale) {
      try {
        removeAbandoned(file, seen, pid)
      } catch {
        // A lock that cannot be removed keeps failing the next attempt, until the deadline below.
      }
    }

    if (Date.now() >= deadline) {
      throw new UserError(
        seen === undefined || stale ? `Cannot take the service lock ${file}.` : `Another amp-distro service command is running (PID ${seen.pid}).`,
        {details: [`Wait for it to finish, or remove ${file} if that process is gone.`]},
      )
    }

    // Released or removed meanwhile: try again soon; held by a live process: wait for it.
    await sleep(seen === undefined || stale ? 10 : 100)
  }

  try {
    return await work()
  } finally {
    if (look(file)?.pid === pid) unlinkSync(file)
  }
}
