import {readFileSync, readlinkSync, realpathSync} from 'node:fs'
import {basename, dirname, isAbsolute, join, resolve} from 'node:path'

import {NAMES} from '../paths.js'

/** True when a process with this PID exists (signal 0 reaches it or is refused for permissions). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** A process's argument vector: `/proc/<pid>/cmdline` on Linux, `ps` elsewhere; undefined when it is gone. */
export function commandLine(pid: number, platform: NodeJS.Platform = process.platform): string[] | undefined {
  if (platform === 'linux') {
    try {
      const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      return raw.length > 0 ? raw.replace(/\0$/, '').split('\0') : undefined
    } catch {
      return undefined
    }
  }

  try {
    // Loaded here, the one place that needs it: on Linux nothing in this module starts a program.
    const out = process.getBuiltinModule('node:child_process').execFileSync('ps', ['-o', 'command=', '-p', String(pid)], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore']}).trim()
    return out.length > 0 ? out.split(/\s+/) : undefined
  } catch {
    return undefined
  }
}

const ENTRY_SCRIPTS = new Set([NAMES.bin, 'run', 'run.js', 'dev.js'])

function processCwd(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`)
  } catch {
    return undefined
  }
}

function ownsEntry(script: string, pid: number): boolean {
  const name = basename(script)
  if (!ENTRY_SCRIPTS.has(name)) return false
  const cwd = isAbsolute(script) ? '/' : processCwd(pid)
  if (cwd === undefined) return false
  let dir: string
  try {
    dir = dirname(realpathSync(resolve(cwd, name === 'run' ? `${script}.js` : script)))
  } catch {
    dir = dirname(resolve(cwd, script))
  }

  try {
    const pkg = JSON.parse(readFileSync(join(dir, '..', 'package.json'), 'utf8')) as {name?: string}
    return pkg.name === NAMES.packageName || pkg.name === NAMES.previousPackageName
  } catch {
    return false
  }
}

/**
 * True when `argv` runs this tool's entry script with `subcommand`: a
 * `bin/run(.js)` or `bin/dev.js` of the amp-distro package (or of
 * amplifier-distro, its name before 0.3.0), or an
 * `amp-distro` launcher that links to one (as npm installs it), directly
 * followed by the subcommand. The script is resolved against the process's
 * working directory and symlinks, and its package.json decides, so another
 * tool with the same launcher name does not count. Folder names play no
 * part: a checkout or an install can live anywhere.
 */
export function runsSubcommand(argv: readonly string[], subcommand: string, pid: number): boolean {
  for (let i = 0; i < argv.length - 1; i++) {
    if (argv[i + 1] === subcommand && ownsEntry(argv[i], pid)) return true
  }

  return false
}

/** True when `pid` is a live `amp-distro <subcommand>` process. */
export function isToolProcess(pid: number, subcommand: 'serve' | 'watchdog', platform: NodeJS.Platform = process.platform): boolean {
  const argv = commandLine(pid, platform)
  return argv !== undefined && runsSubcommand(argv, subcommand, pid)
}
