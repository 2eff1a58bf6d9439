import {delimiter} from 'node:path'

import {EXIT_CONFIG} from '../../../errors.js'
import {DEFAULT_HOST, DEFAULT_PORT, NAMES} from '../../../paths.js'
import {refuseControlChars} from '../../../validate.js'
import {execCommandLine, quoteEnvironment, splitExecLine, splitUnitWords} from './escape.js'
import {flagValue} from '../../spec.js'
import type {UnitSpec} from '../../types.js'

export const SERVER_UNIT = `${NAMES.systemdUnit}.service`
export const WATCHDOG_UNIT = `${NAMES.systemdWatchdogUnit}.service`
/** The listening socket systemd holds for the server, so that connections queue instead of being refused while it restarts. */
export const SOCKET_UNIT = `${NAMES.systemdUnit}.socket`

/**
 * Seconds systemd waits before it restarts the server. With the socket
 * holding the port, connections wait in its queue meanwhile, so the delay
 * is as short as the start limit allows: a new server answered 0.3-0.5 s
 * after a `kill -9` (README, "Recovery").
 */
export const RESTART_SEC = 0.1
/** Seconds systemd waits before it restarts the watchdog (after it handed a restart over, or crashed). */
export const WATCHDOG_RESTART_SEC = 1
/**
 * A crash loop stops (the unit turns `failed`, and the socket with it) after
 * this many starts within the interval: with RestartSec=100ms a server that
 * exits at start-up was given up after 1.2 s (41 s while the watchdog kept
 * starting it through Wants=), while a `kill -9` now and then (the soak: one
 * every 30 s) never comes near it.
 */
export const START_LIMIT_BURST = 5
export const START_LIMIT_INTERVAL_SEC = 60
/** The socket's listen queue: systemd's default, larger than Node's own 511, and kept when the server takes the socket over. */
export const SOCKET_BACKLOG = 4096

/** The journal identifiers of the two units' lines (otherwise they would be labelled with Node's `comm`, `run.js`). */
export const SYSLOG_IDENTIFIER = {serve: NAMES.bin, watchdog: `${NAMES.bin}-watchdog`} as const

const ENV_FILE = '-%h/.amplifier/.env'

type Section = [key: string, value: string][]

function render(sections: Record<string, Section>): string {
  const header = `# Written by \`${NAMES.bin} service install\`; re-run it to update this file, \`${NAMES.bin} service uninstall\` to remove it.`
  const body = Object.entries(sections).map(([name, lines]) => [`[${name}]`, ...lines.map(([key, value]) => `${key}=${value}`)].join('\n'))
  return `${header}\n${body.join('\n\n')}\n`
}

/** A duration in seconds as a unit file writes it: `100ms`, `1`. */
function timespan(seconds: number): string {
  return Number.isInteger(seconds) ? String(seconds) : `${Math.round(seconds * 1000)}ms`
}

function serviceSection(spec: UnitSpec, subcommand: 'serve' | 'watchdog', restart: 'on-failure' | 'always'): Section {
  return [
    ['Type', 'simple'],
    ['ExecStart', execCommandLine([spec.bin, subcommand, '--host', spec.host, '--port', String(spec.port)])],
    ['Restart', restart],
    ['RestartSec', timespan(subcommand === 'serve' ? RESTART_SEC : WATCHDOG_RESTART_SEC)],
    // A configuration that can never work (an invalid flag in a hand-edited unit) fails at once instead of crash-looping.
    ['RestartPreventExitStatus', String(EXIT_CONFIG)],
    ['SyslogIdentifier', SYSLOG_IDENTIFIER[subcommand]],
    ['WorkingDirectory', '%h'],
    // systemd resets PATH for every unit; the Node folder goes first so the unit runs the Node that installed it.
    ['Environment', quoteEnvironment('PATH', spec.path)],
    ['EnvironmentFile', ENV_FILE],
  ]
}

// Start limits belong in [Unit]: in [Service] systemd ignores StartLimitIntervalSec= with a warning.
const START_LIMITS: Section = [
  ['StartLimitIntervalSec', String(START_LIMIT_INTERVAL_SEC)],
  ['StartLimitBurst', String(START_LIMIT_BURST)],
]

const INSTALL: Section = [['WantedBy', 'default.target']]

/**
 * The server unit: `amp-distro serve` restarted on failure (a manual stop
 * stays stopped), with start limits so a crash loop ends in `failed`
 * instead of thrashing. `Requires=` and `After=` the socket, so every start
 * of the server brings the socket up first and the server takes its
 * listener from systemd.
 */
export function renderServerUnit(spec: UnitSpec): string {
  return render({
    Unit: [['Description', 'Amplifier distro server'], ['Requires', SOCKET_UNIT], ['After', SOCKET_UNIT], ...START_LIMITS],
    Service: serviceSection(spec, 'serve', 'on-failure'),
    Install: INSTALL,
  })
}

/**
 * The `ListenStream=` value for an IP address and port: IPv6 addresses in
 * brackets, `%` doubled (systemd expands specifiers there). Throws a
 * UserError for control characters.
 */
export function listenStream(address: string, port: number): string {
  refuseControlChars('host', address)
  return `${address.includes(':') ? `[${address}]` : address}:${port}`.replaceAll('%', '%%')
}

/**
 * The socket unit: systemd listens on `address:port` (an IP address: a
 * hostname is resolved by install) and hands the socket to the server
 * (`Accept=no`), keeping it open while the server restarts.
 *
 * A stop must stay a stop, also `systemctl --user stop amplifier-distro`
 * typed by hand: `StopWhenUnneeded=yes` closes the socket once the server is
 * neither running nor about to run (a restart, an automatic restart after a
 * crash), and no `[Install]` section, because a socket enabled in
 * `sockets.target` (or wanted by anything) is always needed and would
 * start the server again on the next connection. The server's `Requires=`
 * brings it back on every start. Measured alternatives (PartOf=,
 * PropagatesStopTo=, OnSuccess=) each refuse connections on a restart.
 */
export function renderSocketUnit(spec: Pick<UnitSpec, 'port'>, address: string): string {
  return render({
    Unit: [['Description', 'Amplifier distro server socket'], ['StopWhenUnneeded', 'yes']],
    Socket: [
      ['ListenStream', listenStream(address, spec.port)],
      ['Accept', 'no'],
      ['Backlog', String(SOCKET_BACKLOG)],
    ],
  })
}

/** The address and port a socket unit listens on (`ListenStream=`), or undefined without one. */
export function readListenStream(text: string): string | undefined {
  return directive(parseUnit(text), 'Socket', 'ListenStream')
}

/**
 * The watchdog unit: `amp-distro watchdog`, always restarted. `Wants=` and
 * `After=` the server, so a restarted watchdog brings a stopped server back;
 * `PartOf=` the server, so a person's stop or restart of the server takes
 * the watchdog along and it cannot undo a manual stop.
 */
export function renderWatchdogUnit(spec: UnitSpec): string {
  return render({
    Unit: [['Description', 'Amplifier distro server health watchdog'], ['After', SERVER_UNIT], ['Wants', SERVER_UNIT], ['PartOf', SERVER_UNIT], ...START_LIMITS],
    Service: serviceSection(spec, 'watchdog', 'always'),
    Install: INSTALL,
  })
}

/** A unit file read back: each section's directives in order (continuation lines joined, comments dropped). */
export type ParsedUnit = Map<string, Section>

/** Parses unit-file text into sections of `[key, value]` pairs, as systemd reads them. */
export function parseUnit(text: string): ParsedUnit {
  const sections: ParsedUnit = new Map()
  let current: Section | undefined
  let pending = ''
  for (const raw of text.split('\n')) {
    const line = pending + raw.trim()
    pending = ''
    if (line.endsWith('\\')) {
      pending = `${line.slice(0, -1)} `
      continue
    }

    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const header = /^\[(.+)]$/.exec(line)
    if (header) {
      current = sections.get(header[1]) ?? []
      sections.set(header[1], current)
      continue
    }

    const eq = line.indexOf('=')
    if (current && eq > 0) current.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()])
  }

  return sections
}

/** The last value of a directive (systemd's rule for single-valued settings). */
export function directive(unit: ParsedUnit, section: string, key: string): string | undefined {
  return unit
    .get(section)
    ?.filter(([name]) => name === key)
    .at(-1)?.[1]
}

/** What status needs from an installed unit: the command it runs and where it serves. */
export interface UnitCommand {
  argv: string[]
  host: string
  port: number
  /** The unit's PATH (from `Environment=`), when it sets one. */
  path?: string
}

/**
 * Reads `ExecStart=` and `Environment=PATH` back from unit text, undoing the
 * quoting install applied. Host and port fall back to `serve`'s defaults
 * when the command line does not name them; undefined without an
 * `ExecStart=`.
 */
export function readUnitCommand(text: string): UnitCommand | undefined {
  const unit = parseUnit(text)
  const exec = directive(unit, 'Service', 'ExecStart')
  if (exec === undefined) return undefined
  // systemd's prefixes (-, @, :, +, !) say how to run the command; they are not part of it.
  const argv = splitExecLine(exec.replace(/^[-@:+!]+/, ''))
  const port = Number(flagValue(argv, '--port') ?? DEFAULT_PORT)
  let path: string | undefined
  for (const [key, value] of unit.get('Service') ?? []) {
    if (key !== 'Environment') continue
    const assignment = splitUnitWords(value, false).find((word) => word.startsWith('PATH='))
    if (assignment) path = assignment.slice('PATH='.length)
  }

  return {argv, host: flagValue(argv, '--host') ?? DEFAULT_HOST, port: Number.isInteger(port) ? port : DEFAULT_PORT, path}
}

/**
 * Where a unit's `ExecStart=` is written: the 1-based number of the line
 * that sets it last (the one systemd uses) and that line's text, for status
 * to name the line to fix. Undefined without an `ExecStart=`.
 */
export function execStartLine(text: string): {line: number; text: string} | undefined {
  const lines = text.split('\n')
  let found: {line: number; text: string} | undefined
  let section = ''
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim()
    const header = /^\[(.+)]$/.exec(line)
    if (header) section = header[1]
    else if (section === 'Service' && /^ExecStart\s*=/.test(line)) found = {line: index + 1, text: line}
  }

  return found
}

/** The first entry of a unit's PATH: the Node folder install put there. */
export function nodeDirOf(path: string | undefined): string | undefined {
  return path?.split(delimiter)[0] || undefined
}
