import {existsSync} from 'node:fs'
import {basename, join} from 'node:path'

import {NAMES} from '../paths.js'

/** What `service status` prints for an installed unit that still runs the deprecated binary. */
export const DEPRECATED_BINARY_WARNING = [
  `Warning: installed service references deprecated '${NAMES.deprecatedBin}'.`,
  `  Run: ${NAMES.bin} service uninstall && ${NAMES.bin} service install`,
].join('\n')

/**
 * True when any of a unit's command words names the deprecated binary,
 * whether as a bare name, a path ending in it, or a word inside a
 * shell-style command line.
 */
export function referencesDeprecatedBinary(words: readonly string[]): boolean {
  return words.some((word) => word.split(/[\s"']+/).some((token) => token.length > 0 && basename(token) === NAMES.deprecatedBin))
}

/** The warning for a unit whose executable or Node is gone (after a Node upgrade, say): names the path and the fix. */
export function missingPathWarning(what: string, path: string): string {
  return [`Warning: installed service's ${what} ${path} no longer exists.`, `  Run: ${NAMES.bin} service install`].join('\n')
}

/**
 * Checks what an installed unit runs: its executable, and the Node folder
 * that install put first on the unit's PATH (and the `node` inside it).
 * Returns one warning per missing path.
 */
export function missingRuntimeWarnings(unit: {executable?: string; path?: string}): string[] {
  const warnings: string[] = []
  if (unit.executable && !existsSync(unit.executable)) warnings.push(missingPathWarning('executable', unit.executable))
  const nodeDir = unit.path?.split(':').find((entry) => entry.length > 0)
  if (nodeDir) {
    if (!existsSync(nodeDir)) warnings.push(missingPathWarning('Node folder', nodeDir))
    else if (!existsSync(join(nodeDir, 'node'))) warnings.push(missingPathWarning('Node', join(nodeDir, 'node')))
  }

  return warnings
}
