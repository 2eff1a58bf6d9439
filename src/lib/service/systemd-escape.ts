import {refuseControlChars} from '../validate.js'

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

/** An `ExecStart=` command line: every argument quoted with {@link quoteExecArg}. */
export function execCommandLine(args: readonly string[]): string {
  return args.map((arg, i) => quoteExecArg(i === 0 ? 'executable path' : 'argument', arg)).join(' ')
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

/**
 * Splits a unit-file command line or `Environment=` value back into words,
 * undoing the quoting above: double-quoted words with `\\` and `\"`, bare
 * words, `%%` → `%` and, unless `dollars` is false, `$$` → `$`. Used to read
 * host, port and paths back from an installed unit.
 */
export function splitUnitWords(line: string, dollars = true): string[] {
  const words: string[] = []
  let i = 0
  while (i < line.length) {
    while (line[i] === ' ' || line[i] === '\t') i++
    if (i >= line.length) break
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

      if ((c === '%' || (dollars && c === '$')) && line[i + 1] === c) {
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
