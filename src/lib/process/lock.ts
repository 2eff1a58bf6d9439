import {unlinkSync} from 'node:fs'
import {dirname} from 'node:path'

import {UserError} from '../errors.js'
import {type Attempt, type Held, look, tryTake} from './exclusive.js'
import {isAlive} from './procs.js'

export interface LockOptions {
  /** How long to wait for another holder, in ms. */
  timeoutMs?: number
  pid?: number
  sleep?: (ms: number) => Promise<void>
  /** The clock the timeout is measured on, in ms. */
  now?: () => number
}

const abandoned = (held: Held) => held.pid === undefined || !isAlive(held.pid)

/**
 * Runs `work` while holding an exclusive lock file, so two installs (or an
 * install and an uninstall) of the same home never interleave their steps.
 *
 * 1. Creates `file`, holding this process's PID from the first moment it exists.
 * 2. While another live process holds it, waits (up to `timeoutMs`); a lock
 *    left by a dead process, or one with no readable PID, is removed (one
 *    waiter at a time, see `tryTake`) and taking it is tried again.
 * 3. Removes the lock after `work`, whether it succeeded or not.
 */
export async function withLock<T>(file: string, work: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const pid = options.pid ?? process.pid
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)))
  const now = options.now ?? Date.now
  const deadline = now() + (options.timeoutMs ?? 60_000)
  for (;;) {
    let attempt: Attempt
    try {
      attempt = tryTake(file, pid, abandoned)
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message
      throw new UserError(`Cannot create the service lock ${file} (${reason}).`, {details: [`Make sure ${dirname(file)} is a writable folder.`]})
    }

    if (attempt.kind === 'taken') break
    if (now() >= deadline) {
      throw new UserError(
        attempt.kind === 'held' ? `Another amp-distro service command is running (PID ${attempt.holder.pid}).` : `Cannot take the service lock ${file}.`,
        {details: [`Wait for it to finish, or remove ${file} if that process is gone.`]},
      )
    }

    // Released or removed meanwhile: try again soon; held by a live process: wait for it.
    await sleep(attempt.kind === 'held' ? 100 : 10)
  }

  try {
    return await work()
  } finally {
    if (look(file)?.pid === pid) unlinkSync(file)
  }
}
