import {mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync} from 'node:fs'
import {dirname} from 'node:path'

/** Reads a PID file; a missing file or one holding anything but a positive whole number is treated as absent. */
export function readPid(file: string): number | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8').trim()
  } catch {
    return undefined
  }

  if (!/^\d{1,10}$/.test(text)) return undefined
  const pid = Number(text)
  return pid > 0 && pid <= 4_194_304 ? pid : undefined
}

/** Writes a PID file atomically (temporary file, then rename), creating its directory as needed. */
export function writePid(file: string, pid: number): void {
  mkdirSync(dirname(file), {recursive: true})
  const tmp = `${file}.${pid}.tmp`
  writeFileSync(tmp, `${pid}\n`, {mode: 0o644})
  renameSync(tmp, file)
}

/** Removes a PID file, but only while it still names `pid` (so a successor's file is never deleted). */
export function removePidIfOwned(file: string, pid: number): void {
  if (readPid(file) === pid) removeFile(file)
}

/** Removes a file, ignoring one that is already gone. */
export function removeFile(file: string): void {
  try {
    unlinkSync(file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
}
