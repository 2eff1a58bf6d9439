import {pathsFor} from '../../../paths.js'
import type {DriverContext, LogsAnswer} from '../../driver.js'
import type {LogLine, LogsOptions} from '../../types.js'
import {SERVER_UNIT, WATCHDOG_UNIT} from './unit.js'

/**
 * The journal's lines of both user units. `--user-unit` matches a user
 * unit's own lines (`_SYSTEMD_USER_UNIT=`, with the caller's `_UID`) and the
 * user manager's lines about it (`USER_UNIT=`), two units or'ed, in every
 * journal file the caller may read: a desktop user's own
 * `user-<uid>.journal` as much as the system journal where root's units (or
 * a volatile journal's) end up. `--user -u` would read the per-user files
 * only, which root and volatile journals do not have.
 */
const MATCHES = ['--user-unit', SERVER_UNIT, '--user-unit', WATCHDOG_UNIT]

/** The fields a line needs; journalctl always adds `__CURSOR` and `__REALTIME_TIMESTAMP`. */
const FIELDS = 'MESSAGE,SYSLOG_IDENTIFIER,_PID,_SYSTEMD_USER_UNIT,USER_UNIT'

/**
 * The journalctl arguments for one read: JSON entries (so each line keeps
 * its unit), long messages in full, no pager, and no hint about journal
 * files the caller may not read (`--quiet`). A read continues after
 * `afterCursor` when given, otherwise it takes the last `lines`.
 */
export function journalArgs(options: {lines: number; follow: boolean; afterCursor?: string}): string[] {
  const where = options.afterCursor === undefined ? ['--lines', String(options.lines)] : [`--after-cursor=${options.afterCursor}`]
  return [...MATCHES, ...where, ...(options.follow ? ['--follow'] : []), '--output', 'json', `--output-fields=${FIELDS}`, '--all', '--quiet', '--no-pager']
}

/** One journal entry as `journalctl --output json` writes it (fields absent or null when the entry lacks them). */
interface JournalEntry {
  __CURSOR?: string
  __REALTIME_TIMESTAMP?: string
  MESSAGE?: string | number[] | null
  SYSLOG_IDENTIFIER?: string
  _PID?: string
  _SYSTEMD_USER_UNIT?: string
  USER_UNIT?: string
}

const pad = (n: number) => String(n).padStart(2, '0')

/** A time as journalctl's `short-iso` output shows it: local time with its offset, `2026-12-01T10:36:19+01:00`. */
export function isoLocal(date: Date): string {
  const offset = -date.getTimezoneOffset()
  const sign = offset < 0 ? '-' : '+'
  const zone = `${sign}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`
  return `${day}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}${zone}`
}

/**
 * One JSON line of journalctl as a log line: `<time> <identifier>[<pid>]:
 * <message>`, from the unit it belongs to. A message that is not valid
 * UTF-8 comes as an array of bytes and is decoded leniently. Undefined for
 * a line that is not a journal entry.
 */
export function parseEntry(json: string): {line: LogLine; cursor?: string} | undefined {
  let entry: JournalEntry
  try {
    entry = JSON.parse(json) as JournalEntry
  } catch {
    return undefined
  }

  if (entry === null || typeof entry !== 'object') return undefined
  const message = Array.isArray(entry.MESSAGE) ? Buffer.from(entry.MESSAGE).toString('utf8') : (entry.MESSAGE ?? '')
  const micros = Number(entry.__REALTIME_TIMESTAMP)
  const time = Number.isFinite(micros) ? `${isoLocal(new Date(micros / 1000))} ` : ''
  const who = `${entry.SYSLOG_IDENTIFIER ?? 'unknown'}${entry._PID ? `[${entry._PID}]` : ''}`
  return {
    line: {source: entry._SYSTEMD_USER_UNIT ?? entry.USER_UNIT ?? 'journal', text: `${time}${who}: ${message}`},
    ...(entry.__CURSOR ? {cursor: entry.__CURSOR} : {}),
  }
}

/**
 * The last `lines` lines of one unit in the journal, oldest first, as
 * `service logs` prints them; empty when the journal has none or cannot be
 * read (the diagnosis of a server that did not come up shows them).
 */
export async function journalTail(ctx: Pick<DriverContext, 'exec' | 'env'>, unit: string, lines: number): Promise<string[]> {
  const args = ['--user-unit', unit, ...journalArgs({lines, follow: false}).slice(MATCHES.length)]
  const answer = await ctx.exec('journalctl', args, {env: ctx.env})
  return answer.stdout.split('\n').flatMap((json) => parseEntry(json)?.line.text ?? [])
}

/**
 * Writes the journal's lines of the server and the watchdog, oldest first,
 * through `options.write`.
 *
 * 1. Reads the last `options.lines` lines (skipped for 0).
 * 2. With `follow`, keeps reading from after the last line read (only new
 *    lines for 0) until `options.signal` fires.
 *
 * When the journal gave nothing at all, the result says so at once (a
 * follow would only wait in silence) and points at the files under
 * `~/.amplifier/server/`: either no journald runs, or the lines are in a
 * journal this user may not read.
 */
export async function readJournal(ctx: Pick<DriverContext, 'exec' | 'stream' | 'env' | 'home'>, options: LogsOptions): Promise<LogsAnswer> {
  let shown = 0
  let cursor: string | undefined
  const take = (json: string) => {
    const parsed = parseEntry(json)
    if (!parsed) return
    shown++
    cursor = parsed.cursor ?? cursor
    options.write(parsed.line)
  }

  let stderr = ''
  let code = 0
  if (options.lines > 0) {
    const answer = await ctx.exec('journalctl', journalArgs({lines: options.lines, follow: false}), {env: ctx.env})
    for (const json of answer.stdout.split('\n')) if (json.trim()) take(json)
    ;({stderr, code} = answer)
  }

  if (options.follow && code === 0 && (cursor !== undefined || options.lines === 0) && !options.signal.aborted) {
    const from = cursor === undefined ? {lines: 0} : {lines: 0, afterCursor: cursor}
    const answer = await ctx.stream('journalctl', journalArgs({...from, follow: true}), {env: ctx.env, signal: options.signal, onLine: take})
    ;({stderr, code} = answer)
  }

  const units = `${SERVER_UNIT} and ${WATCHDOG_UNIT}`
  if (shown > 0 || (options.lines === 0 && code === 0)) {
    return {count: shown, readable: true, message: `${shown} ${shown === 1 ? 'line' : 'lines'} of ${units} from the journal.`, details: []}
  }

  const paths = pathsFor(ctx.home, ctx.env)
  const why = stderr.trim().split('\n')[0]
  const details = [
    ...(code === 127 ? ['journalctl was not found on PATH.'] : why ? [`journalctl answered: ${why}`] : []),
    'Either no journald runs here, or the lines are kept in a journal your user may not read (members of the systemd-journal or adm group may read all of it).',
    `The files under ${paths.serverDir}/ keep what the watchdog did: ${paths.watchdogLog}, and ${paths.crashLog} for servers it restarted on its own.`,
  ]
  return {count: 0, readable: code === 0, message: `The journal holds no lines of ${units}.`, details}
}
