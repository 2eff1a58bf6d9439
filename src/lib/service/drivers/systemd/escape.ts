import {refuseControlChars} from '../../../validate.js'

/*
 * systemd unit files are line-based: a newline inside a value starts a new
 * directive (a `--host` carrying `\nExecStartPre=…` would really run), a
 * trailing backslash joins the next line, `%` starts a specifier and `$`
 * expands variables in command lines. Values are therefore refused when they
 * carry control characters and quoted, never pasted.
 */

function escapeQuoted(value: string, dollars: boolean): string {
  let out = value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('%', '%%')
  if (dollars) out = out.replaceAll('$', '$$$$')
  return `"${out}"`
}

/**
 * Quotes one `ExecStart=` argument: `"…"` with `\` → `\\`, `"` → `\"`,
 * `%` → `%%` and `$` → `$$`, so systemd passes it through verbatim.
 * Throws a UserError for control characters.
 */
export function quoteExecArg(what: string, value: string): string {
  refuseControlChars(what, value)
  return escapeQuoted(value, true)
}

/**
 * Quotes the executable of an `ExecStart=` line: like {@link quoteExecArg}
 * except that `$` stays as it is, because systemd runs the first word
 * without variable expansion (a doubled `$$` there names a path that does
 * not exist).
 */
export function quoteExecPath(value: string): string {
  refuseControlChars('executable path', value)
  return escapeQuoted(value, false)
}

/** An `ExecStart=` command line: the executable and every argument quoted. */
export function execCommandLine(args: readonly string[]): string {
  return args.map((arg, i) => (i === 0 ? quoteExecPath(arg) : quoteExecArg('argument', arg))).join(' ')
}

/**
 * The value of an `Environment=` line, `"NAME=value"`: escaped like an
 * `ExecStart=` argument except that `$` stays as it is (systemd does not
 * expand variables there). Throws a UserError for control characters.
 */
export function quoteEnvironment(name: string, value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`invalid environment variable name: ${name}`)
  refuseControlChars(`${name} value`, value)
  return escapeQuoted(`${name}=${value}`, false)
}

/** Splits an `ExecStart=` line back into the executable and its arguments, undoing {@link execCommandLine}. */
export function splitExecLine(line: string): string[] {
  return splitUnitWords(line, (index) => index > 0)
}

/**
 * Splits a unit-file command line or `Environment=` value back into words,
 * undoing the quoting above: double-quoted words with `\\` and `\"`, bare
 * words, `%%` → `%` and, where `dollars` says so for the word's index,
 * `$$` → `$`. Used to read host, port and paths back from an installed unit.
 */
export function splitUnitWords(line: string, dollars: boolean | ((index: number) => boolean) = true): string[] {
  const words: string[] = []
  let i = 0
  while (i < line.length) {
    while (line[i] === ' ' || line[i] === '\t') i++
    if (i >= line.length) break
    const collapseDollars = typeof dollars === 'function' ? dollars(words.length) : dollars
    let word = ''
    const quote = line[i] === '"' || line[i] === "'" ? line[i++] : undefined
    while (i < line.length) {
      const c = line[i]
      if (quote ? c === quote : c === ' ' || c === '\t') {
        if (quote) i++
        break
      }

      if (c === '\\' && i + 1 < line.length) {
        word += line[i + 1]
        i += 2
        continue
      }

      if ((c === '%' || (collapseDollars && c === '$')) && line[i + 1] === c) {
        word += c
        i += 2
        continue
      }

      word += c
      i++
    }

    words.push(word)
  }

  return words
}
