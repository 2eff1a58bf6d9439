import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {parseArgs, type ParseArgsConfig} from 'node:util'

/** The part of an oclif manifest flag that the fast path reads. */
interface ManifestFlag {
  type: 'boolean' | 'option'
  char?: string
  default?: boolean | string
  options?: readonly string[]
  multiple?: boolean
  allowNo?: boolean
  /** Flags that may not be given together with this one. */
  exclusive?: readonly string[]
}

interface Manifest {
  commands: Record<string, {flags: Record<string, ManifestFlag>}>
}

/**
 * The manifest flag properties the fast path handles: those parseWithManifest
 * implements, and those that only shape help, which the fast path never
 * answers. oclif's manifest records more (required, dependsOn, relationships,
 * env, aliases, deprecated, delimiter, ...): a flag that carries any of them
 * is left to oclif, which implements them all.
 */
export const HANDLED_FLAG_PROPERTIES: ReadonlySet<string> = new Set([
  'type',
  'char',
  'default',
  'options',
  'multiple',
  'allowNo',
  'exclusive',
  'name',
  'description',
  'summary',
  'helpGroup',
  'helpLabel',
  'helpValue',
  'hasDynamicHelp',
  'hidden',
])

/** The properties of a manifest flag that the fast path does not handle; a property that is false counts as absent. */
export function unhandledProperties(flag: object): string[] {
  return Object.entries(flag)
    .filter(([key, value]) => value !== undefined && value !== false && !HANDLED_FLAG_PROPERTIES.has(key))
    .map(([key]) => key)
}

/**
 * Parses `args` against a command's flags as recorded in the oclif manifest
 * (generated from the command classes, so the definitions are the same);
 * a boolean flag with `allowNo` also takes its `--no-` form, which sets it
 * false. Returns undefined for anything it does not fully understand (help,
 * unknown or repeated flags, a flag given in both forms, values outside
 * `options`, flags given together that exclude each other, a flag with a
 * property it does not handle): oclif then handles the invocation and
 * renders help or errors exactly as it always does.
 */
export function parseWithManifest(flags: Record<string, ManifestFlag>, args: string[]): Record<string, boolean | string> | undefined {
  if (args.some((arg) => arg === '--help' || arg === '-h' || arg === '--')) return undefined
  const options: NonNullable<ParseArgsConfig['options']> = {}
  const negations = new Map<string, string>()
  for (const [name, flag] of Object.entries(flags)) {
    if (flag.multiple || unhandledProperties(flag).length > 0) return undefined
    options[name] = flag.type === 'boolean' ? {type: 'boolean'} : {type: 'string'}
    if (flag.char) options[name].short = flag.char
    if (flag.allowNo && flag.type === 'boolean') negations.set(`no-${name}`, name)
  }

  for (const negation of negations.keys()) {
    if (negation in options) return undefined
    options[negation] = {type: 'boolean'}
  }

  let values: Record<string, boolean | string | (boolean | string)[] | undefined>
  try {
    const result = parseArgs({args, options, strict: true, allowPositionals: false, tokens: true})
    // parseArgs keeps the last of a repeated flag; oclif refuses the repeat, so oclif must answer.
    const names = result.tokens.filter((token) => token.kind === 'option').map((token) => negations.get(token.name) ?? token.name)
    if (new Set(names).size !== names.length) return undefined
    values = result.values
  } catch {
    return undefined
  }

  for (const [negation, name] of negations) {
    if (values[negation] !== undefined) values[name] = false
  }

  const parsed: Record<string, boolean | string> = {}
  for (const [name, flag] of Object.entries(flags)) {
    const value = values[name]
    if (Array.isArray(value)) return undefined
    if (value === undefined) {
      if (flag.default !== undefined) parsed[name] = flag.default
      continue
    }

    if (flag.options && !flag.options.includes(String(value))) return undefined
    if (flag.exclusive?.some((other) => values[other] !== undefined)) return undefined
    parsed[name] = value
  }

  return parsed
}

/**
 * Handles the commands that have an action (src/lib/cli/actions.ts: those people
 * and supervisors run, and the service commands, whose own work is small
 * next to oclif's start-up) without loading oclif; `--version` comes earlier
 * still (src/version.ts). `root` is the package's folder. Returns false when
 * the invocation is not one it handles, so the caller falls back to oclif.
 */
export async function fastRun(argv: string[], root: string): Promise<boolean> {
  const {actions, reportFailure} = await import('./lib/cli/actions.js')
  const id = Object.keys(actions).find((candidate) => candidate.split(':').every((word, i) => argv[i] === word))
  if (id === undefined) return false
  let manifest: Manifest
  try {
    manifest = JSON.parse(readFileSync(join(root, 'oclif.manifest.json'), 'utf8')) as Manifest
  } catch {
    return false
  }

  const command = manifest.commands[id]
  const flags = command && parseWithManifest(command.flags, argv.slice(id.split(':').length))
  if (!flags) return false
  try {
    await actions[id](flags)
  } catch (error) {
    process.exitCode = reportFailure(error)
  }

  return true
}
