import {existsSync, readFileSync} from 'node:fs'
import {isAbsolute} from 'node:path'

import {NAMES} from '../paths.js'

/** What a backend read back from one installed unit or plist. */
export interface InstalledDefinition {
  /** The file's whole text: any mention of the deprecated binary counts. */
  text: string
  /** The program the supervisor starts (argv[0]). */
  program?: string
  /** The Node folder install put first on the unit's PATH. */
  nodeDir?: string
}

export const DEPRECATED_WARNING = [
  `Warning: installed service references deprecated '${NAMES.deprecatedBin}'.`,
  `  Run: ${NAMES.bin} service uninstall && ${NAMES.bin} service install`,
].join('\n')

function missingWarning(what: string, path: string): string {
  return [`Warning: installed service's ${what} ${path} no longer exists.`, `  Re-run: ${NAMES.bin} service install`].join('\n')
}

/**
 * Drift between installed units and this machine: a unit that still names
 * the deprecated server binary (written by an old release), and a unit whose
 * executable or Node folder has gone, for example after a Node upgrade.
 * Returns one multi-line warning per problem, without repeats.
 */
export function staleWarnings(definitions: readonly InstalledDefinition[], exists: (path: string) => boolean = existsSync): string[] {
  const warnings = new Set<string>()
  for (const definition of definitions) {
    if (definition.text.includes(NAMES.deprecatedBin)) warnings.add(DEPRECATED_WARNING)
    // A bare program name is looked up by the supervisor; only absolute paths can be checked here.
    if (definition.program && isAbsolute(definition.program) && !exists(definition.program)) {
      warnings.add(missingWarning('executable', definition.program))
    }

    if (definition.nodeDir && isAbsolute(definition.nodeDir) && !exists(definition.nodeDir)) {
      warnings.add(missingWarning('Node folder', definition.nodeDir))
    }
  }

  return [...warnings]
}

/** A file's text, or undefined when it cannot be read. */
export function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
}
