import {readFileSync} from 'node:fs'

import {removeFile, writeFilesAtomically} from './files.js'

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
  writeFilesAtomically([{path: file, content: `${pid}\n`}])
}

/** Removes a PID file, but only while it still names `pid` (so a successor's file is never deleted). */
export function removePidIfOwned(file: string, pid: number): void {
  if (readPid(file) === pid) removeFile(file)
}
