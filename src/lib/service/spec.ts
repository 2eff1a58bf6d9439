import {delimiter, dirname, isAbsolute} from 'node:path'

import {parsePort, refuseControlChars, validateHost} from '../validate.js'
import type {ServiceContext, UnitSpec} from './types.js'

/**
 * The PATH a unit gets: the folder of the Node running the install first (so
 * the supervisor, which starts services with a minimal PATH, runs the same
 * Node), then the installing shell's PATH. Empty and relative entries are
 * dropped (they would mean the service's working directory), duplicates
 * keep their first place.
 */
export function unitPath(nodePath: string, shellPath: string | undefined): string {
  const entries = [dirname(nodePath), ...(shellPath ?? '').split(delimiter)].filter((entry) => isAbsolute(entry))
  return [...new Set(entries)].join(delimiter)
}

/**
 * Builds the spec every backend renders from, validating each value first:
 * host and port exactly as `serve` does, then the binary (resolved through
 * `ctx.resolveBinary`) and the PATH, which must not carry control
 * characters. Throws a UserError for anything invalid, before any file is
 * written.
 */
export function makeUnitSpec(ctx: ServiceContext, options: {host: string; port: number | string}): UnitSpec {
  const host = validateHost(options.host)
  const port = parsePort(options.port)
  const bin = ctx.resolveBinary().path
  refuseControlChars('amp-distro path', bin)
  const path = unitPath(ctx.nodePath, ctx.env.PATH)
  refuseControlChars('PATH', path)
  return {bin, host, port, path, home: ctx.home}
}

/**
 * The value a command line gives `flag` (`--port 8500` or `--port=8500`,
 * as oclif reads both), for reading back what an installed unit or plist
 * runs; undefined where the flag is absent.
 */
export function flagValue(args: string[], flag: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === flag) return args[i + 1]
    if (args[i].startsWith(`${flag}=`)) return args[i].slice(flag.length + 1)
  }

  return undefined
}
