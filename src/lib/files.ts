import {chmodSync, existsSync, mkdirSync, renameSync, unlinkSync, writeFileSync} from 'node:fs'
import {dirname} from 'node:path'

/** Removes a file, ignoring one that is already gone. */
export function removeFile(file: string): void {
  try {
    unlinkSync(file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
}

/**
 * Writes files atomically, as a set:
 * 1. every temporary file first (beside its target, mode 0644 whatever the umask);
 * 2. then the renames, so readers see either the old file or the new one, never a half-written one.
 * When a write fails, the temporary files are removed and the old files stay as they were.
 */
export function writeFilesAtomically(files: readonly {path: string; content: string}[]): void {
  const written: string[] = []
  try {
    for (const file of files) {
      mkdirSync(dirname(file.path), {recursive: true})
      const tmp = `${file.path}.${process.pid}.tmp`
      written.push(tmp)
      writeFileSync(tmp, file.content, {mode: 0o644})
      chmodSync(tmp, 0o644)
    }
  } catch (error) {
    for (const tmp of written) removeFile(tmp)
    throw error
  }

  for (const [i, file] of files.entries()) renameSync(written[i], file.path)
}

/** A shell-style rendering of an argument vector, for people reading a dry run or an error. */
export function commandText(argv: readonly string[]): string {
  return argv.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", String.raw`'\''`)}'`)).join(' ')
}

/** Removes those of `files` that exist; answers the ones it removed. */
export function removeExisting(files: readonly string[]): string[] {
  return files.filter((file) => {
    if (!existsSync(file)) return false
    removeFile(file)
    return true
  })
}
