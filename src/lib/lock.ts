import {closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync} from 'node:fs'
import {dirname} from 'node:path'

import {UserError} from './errors.js'
import {isAlive} from './procs.js'

export interface LockOptions {
  /** How long to wait for another holder, in ms. */
  timeoutMs?: number
  pid?: number
  sleep?: (ms: number) => Promise<void>
}

function holderOf(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim())
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

/**
 * Runs `work` while holding an exclusive lock file, so two installs (or an
 * install and an uninstall) of the same home never interleave their steps.
 *
 * 1. Creates `file` with O_EXCL and writes the holder's PID into it.
 * 2. While another live process holds it, waits (up to `timeoutMs`); a lock
 *    left by a dead process, or one with no readable PID, is removed.
 * 3. Removes the lock after `work`, whether it succeeded or not.
 */
export async function withLock<T>(file: string, work: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const pid = options.pid ?? process.pid
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)))
  const deadline = Date.now() + (options.timeoutMs ?? 60_000)
  mkdirSync(dirname(file), {recursive: true})
  for (;;) {
    try {
      const fd = openSync(file, 'wx', 0o644)
      writeSync(fd, `${pid}\n`)
      closeSync(fd)
      break
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }

    const holder = holderOf(file)
    if (holder === undefined || !isAlive(holder)) {
      await sleep(50)
      if (holderOf(file) === holder) {
        try {
          unlinkSync(file)
        } catch {
          // Another waiter removed it first; try again.
        }
      }

      continue
    }

    if (Date.now() >= deadline) {
      throw new UserError(`Another amp-distro service command is running (PID ${holder}).`, {
        details: [`Wait for it to finish, or remove ${file} if that process is gone.`],
      })
    }

    await sleep(100)
  }

  try {
    return await work()
  } finally {
    if (holderOf(file) === pid) unlinkSync(file)
  }
}
