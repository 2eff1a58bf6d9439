import {readFileSync} from 'node:fs'

import {UserError} from '../errors.js'
import {parsePid, tryTake} from './exclusive.js'
import {removeFile} from '../files.js'
import {isAlive, isToolProcess} from './procs.js'

/** Reads a PID file; a missing file or one holding anything but a positive whole number is treated as absent. */
export function readPid(file: string): number | undefined {
  try {
    return parsePid(readFileSync(file, 'utf8'))
  } catch {
    return undefined
  }
}

export interface ClaimOptions {
  /** True when `pid` is a live process of the kind this file is for (an `amp-distro serve`, a watchdog). */
  isHolder: (pid: number) => boolean
  /** How long to keep trying while the file is released or taken over by a rival, in ms. */
  timeoutMs?: number
  sleep?: (ms: number) => Promise<void>
}

/** What claiming a PID file came to. */
export type Claim =
  /** The file names this process now. */
  | {kind: 'claimed'}
  /** Another live process of the same kind holds it. */
  | {kind: 'held'; pid: number}

/**
 * Claims `file` for `pid`, so that of two processes started at the same
 * moment exactly one holds it.
 *
 * 1. Creates the file exclusively, holding the PID from its first moment
 *    (src/lib/exclusive.ts, as the service lock does).
 * 2. A file naming a live holder (`isHolder`) other than `pid` is left alone: `held`.
 * 3. A stale file (a dead process, an unrelated one that reuses the PID,
 *    this very PID left by an earlier process, or garbage) is removed under
 *    the `.break` guard, so only one of several takers removes it, and
 *    creating is tried again.
 * Throws when the file cannot be created, or when it could not be taken
 * within `timeoutMs` (5 s).
 */
export async function claimPidFile(file: string, pid: number, options: ClaimOptions): Promise<Claim> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)))
  const deadline = performance.now() + (options.timeoutMs ?? 5000)
  const stale = ({pid: holder}: {pid: number | undefined}) => holder === undefined || holder === pid || !isAlive(holder) || !options.isHolder(holder)
  for (;;) {
    const attempt = tryTake(file, pid, stale)
    if (attempt.kind === 'taken') return {kind: 'claimed'}
    if (attempt.kind === 'held') return {kind: 'held', pid: attempt.holder.pid as number}
    if (performance.now() >= deadline) throw new Error(`${file} kept changing while it was being taken over`)
    await sleep(10)
  }
}

/**
 * Claims the PID file of `amp-distro serve` or `amp-distro watchdog` for
 * this process, as `claimPidFile` does, a live holder being that same
 * command. Throws a UserError: `held` (which names the holder and what to
 * do) when another one runs, or why the file cannot be written.
 */
export async function claimCommandPid(file: string, pid: number, command: 'serve' | 'watchdog', held: (holder: number) => UserError): Promise<void> {
  let claim: Claim
  try {
    claim = await claimPidFile(file, pid, {isHolder: (holder) => isToolProcess(holder, command)})
  } catch (error) {
    throw new UserError(`Cannot write the PID file ${file}: ${(error as Error).message}`)
  }

  if (claim.kind === 'held') throw held(claim.pid)
}

/** Removes a PID file, but only while it still names `pid` (so a successor's file is never deleted). */
export function removePidIfOwned(file: string, pid: number): void {
  if (readPid(file) === pid) removeFile(file)
}
