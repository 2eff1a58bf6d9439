import {accessSync, constants, statSync} from 'node:fs'
import {isAbsolute, resolve, sep} from 'node:path'
import which from 'which'

import {UserError} from './errors.js'
import {NAMES} from './paths.js'

export interface BinaryDeps {
  argv: readonly string[]
  env: NodeJS.ProcessEnv
  cwd: string
}

export interface ResolvedBinary {
  path: string
  /** Where it was found: oclif's tarball launcher variable, the running program, or PATH. */
  source: 'env' | 'argv' | 'path'
}

function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** True for a path inside npm's npx cache (`<cache>/_npx/<hash>/…`), which npm may delete at any time. */
export function isNpxCachePath(file: string): boolean {
  return file.split(sep).includes('_npx')
}

const INSTALL_HINT = `npm install -g ${NAMES.packageName}`

/**
 * Finds the `amp-distro` that service units should run:
 * 1. `AMP_DISTRO_BINPATH` (set by oclif's standalone-tarball launcher to itself);
 * 2. the running program, `argv[1]` made absolute;
 * 3. `amp-distro` on `PATH`.
 * Candidates that are missing or not executable are skipped. A running copy
 * in the npx cache yields to a durable one on `PATH`, and is refused when
 * there is none, since a unit pointing into that cache breaks when npm
 * cleans it.
 */
export function resolveBinary(deps: BinaryDeps = {argv: process.argv, env: process.env, cwd: process.cwd()}): ResolvedBinary {
  const fromEnv = deps.env.AMP_DISTRO_BINPATH
  if (fromEnv && isAbsolute(fromEnv) && isExecutableFile(fromEnv)) return {path: fromEnv, source: 'env'}

  const onPath = (which.sync(NAMES.bin, {all: true, nothrow: true, path: deps.env.PATH ?? ''}) ?? []).filter((file) => isExecutableFile(file))
  const durable = onPath.find((file) => !isNpxCachePath(file))

  const script = deps.argv[1]
  const running = script ? resolve(deps.cwd, script) : undefined
  if (running && isExecutableFile(running)) {
    if (!isNpxCachePath(running)) return {path: running, source: 'argv'}
    if (durable) return {path: durable, source: 'path'}
    throw new UserError(`amp-distro is running from npx's cache (${running}), which npm may delete at any time.`, {
      details: ['A service must run a durable install. Install it first, then run service install again:', `  ${INSTALL_HINT}`],
    })
  }

  if (durable) return {path: durable, source: 'path'}
  throw new UserError('amp-distro binary not found.', {
    details: [`Ensure the directory holding amp-distro is on PATH, or reinstall: ${INSTALL_HINT}`],
  })
}
