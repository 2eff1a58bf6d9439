import {isAbsolute} from 'node:path'
import plist, {type PlistObject, type PlistValue} from 'plist'

import {UserError} from '../../../errors.js'
import {DEFAULT_HOST, DEFAULT_PORT, NAMES, pathsFor} from '../../../paths.js'
import {parsePort, refuseControlChars, validateHost} from '../../../validate.js'
import {type InstalledDefinition, readText} from '../../stale.js'
import {flagValue} from '../../spec.js'
import type {UnitSpec} from '../../types.js'

/** One launchd user agent: its label and where its plist lives. */
export interface LaunchdJob {
  label: string
  plistPath: string
}

/** The server and watchdog jobs for a home, server first. */
export function launchdJobs(home: string): [LaunchdJob, LaunchdJob] {
  const paths = pathsFor(home)
  return [
    {label: NAMES.launchdLabel, plistPath: paths.launchdServerPlist},
    {label: NAMES.launchdWatchdogLabel, plistPath: paths.launchdWatchdogPlist},
  ]
}

/**
 * The least time, in seconds, between two starts of a job. launchd has no
 * RestartPreventExitStatus: a server that exits with a configuration error
 * (EXIT_CONFIG, 78) is started again like any failure, so this bounds that
 * loop to one attempt (and one line in server.err.log) every 30 s, while a
 * server that ran longer than that is still restarted at once.
 */
export const THROTTLE_SECONDS = 30

/**
 * launchd.plist(5) ExitTimeOut: the seconds between the SIGTERM launchd
 * sends on bootout and its SIGKILL (5 s when unset: current `launchctl
 * print` output shows `exit timeout = 5`). The server drains requests in
 * flight on SIGTERM and closes what is still open after 3 s (`stopServer`),
 * so 10 s lets it finish on a loaded machine.
 */
export const EXIT_TIMEOUT_SECONDS = 10

/**
 * launchd.plist(5) ProcessType: unset, launchd applies "light resource
 * limits", throttling the job's CPU and I/O as background work. The server
 * answers a person's requests (a browser, the CLI), so it runs Interactive,
 * "the same resource limitations as apps, that is to say, none". Adaptive
 * would move with activity over XPC connections, which a Node HTTP server
 * never opens, so it would stay throttled. openclaw's LaunchAgent
 * (src/daemon/launchd-plist.ts) makes the same choice for its gateway.
 */
export const PROCESS_TYPE = 'Interactive'

/**
 * Checks a spec before anything is rendered from it: host and port exactly
 * as `serve` validates them, an absolute binary path, and no control
 * characters in any value (a newline in a plist string is harmless to XML
 * but would reach the program's argv and its environment).
 */
export function checkSpec(spec: UnitSpec): UnitSpec {
  refuseControlChars('binary path', spec.bin)
  refuseControlChars('host', spec.host)
  refuseControlChars('PATH', spec.path)
  refuseControlChars('home directory', spec.home)
  if (!isAbsolute(spec.bin)) throw new UserError(`Invalid binary path: ${JSON.stringify(spec.bin)} is not absolute.`)
  if (!isAbsolute(spec.home)) throw new UserError(`Invalid home directory: ${JSON.stringify(spec.home)} is not absolute.`)
  return {...spec, host: validateHost(spec.host), port: parsePort(spec.port)}
}

function agentPlist(spec: UnitSpec, label: string, args: string[], keepAlive: PlistValue, logs: {out: string; err: string}): PlistObject {
  return {
    Label: label,
    ProgramArguments: [spec.bin, ...args, '--host', spec.host, '--port', String(spec.port)],
    RunAtLoad: true,
    KeepAlive: keepAlive,
    ThrottleInterval: THROTTLE_SECONDS,
    ExitTimeOut: EXIT_TIMEOUT_SECONDS,
    ProcessType: PROCESS_TYPE,
    WorkingDirectory: spec.home,
    // launchd opens these for appending and never rotates them; the server and the watchdog keep
    // them under a size limit by truncating in place, which appending makes safe. Their folder must
    // exist before every load: launchd does not create it, and cannot start the job without it.
    StandardOutPath: logs.out,
    StandardErrorPath: logs.err,
    // launchd does not set LAUNCHD_JOB_NAME itself; the watchdog's supervisor detection reads it.
    EnvironmentVariables: {PATH: spec.path, LAUNCHD_JOB_NAME: label},
  }
}

/**
 * The server agent: restarted by launchd when it exits with a failure,
 * at most once every THROTTLE_SECONDS (a clean exit, such as a manual stop,
 * stays stopped).
 */
export function renderServerPlist(spec: UnitSpec): PlistObject {
  const valid = checkSpec(spec)
  const paths = pathsFor(valid.home)
  return agentPlist(valid, NAMES.launchdLabel, ['serve'], {SuccessfulExit: false}, {out: paths.serverStdoutLog, err: paths.serverStderrLog})
}

/** The watchdog agent: always kept alive, at most one start every THROTTLE_SECONDS. */
export function renderWatchdogPlist(spec: UnitSpec): PlistObject {
  const valid = checkSpec(spec)
  const paths = pathsFor(valid.home)
  return agentPlist(valid, NAMES.launchdWatchdogLabel, ['watchdog'], true, {out: paths.watchdogStdoutLog, err: paths.watchdogStderrLog})
}

/** Serializes a plist object as XML with the `plist` package, which escapes every value. */
export function buildPlist(value: PlistObject): string {
  return `${plist.build(value)}\n`
}

/** An installed plist as the backend reads it back: the raw text (for drift checks) and what it runs. */
export interface InstalledPlist extends InstalledDefinition {
  args: string[]
  /** Why the text is not a readable plist, when it is not. */
  problem?: string
}

function stringsOf(value: PlistValue | undefined): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []
}

/** The first entry of a plist's PATH: the Node folder install put there. */
function nodeDirOf(path: string | undefined): string | undefined {
  return path?.split(':')[0] || undefined
}

/** Reads a plist's text as install wrote it: what it runs, and the Node folder on its PATH. */
export function parsePlistText(text: string): InstalledPlist {
  let parsed: PlistValue
  try {
    parsed = plist.parse(text)
  } catch (error) {
    return {text, args: [], problem: (error as Error).message.split('\n')[0]}
  }

  const dict = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as PlistObject) : {}
  const args = stringsOf(dict.ProgramArguments)
  const env = dict.EnvironmentVariables as PlistObject | undefined
  const path = env !== null && typeof env === 'object' && typeof env.PATH === 'string' ? env.PATH : undefined
  return {text, args, program: args[0], nodeDir: nodeDirOf(path)}
}

/** Reads an installed plist; undefined when there is none. */
export function readInstalledPlist(file: string): InstalledPlist | undefined {
  const text = readText(file)
  return text === undefined ? undefined : parsePlistText(text)
}

/**
 * Where an installed server listens, from its ProgramArguments, read as
 * systemd units are read: a hand-edited port outside 1-65535 is kept, so
 * status and the health wait report it (`isListenablePort`) instead of
 * asking the default port, which another program may hold.
 */
export function installedTarget(installed: InstalledPlist): {host: string; port: number} {
  const port = Number(flagValue(installed.args, '--port') ?? DEFAULT_PORT)
  return {host: flagValue(installed.args, '--host') ?? DEFAULT_HOST, port: Number.isInteger(port) ? port : DEFAULT_PORT}
}

/** A ProgramArguments value that `serve` refuses, and the line of the plist that holds it. */
export interface PlistMistake {
  /** 1-based line in the plist's text. */
  line: number
  /** That line, trimmed. */
  text: string
  /** Why the value is refused, as `serve` says it. */
  reason: string
}

/**
 * Finds the line of a hand-edited plist that makes `serve` exit with a
 * configuration error: the value after `--host` or `--port` that fails the
 * checks `serve` applies, or else the ProgramArguments key itself.
 */
export function findPlistMistake(installed: InstalledPlist): PlistMistake | undefined {
  const lines = installed.text.split('\n')
  const checks: [string, (value: string) => unknown][] = [
    ['--host', validateHost],
    ['--port', parsePort],
  ]
  for (const [flag, check] of checks) {
    const value = flagValue(installed.args, flag)
    if (value === undefined) continue
    try {
      check(value)
    } catch (error) {
      const flagLine = lines.findIndex((line) => line.trim() === `<string>${flag}</string>`)
      const valueLine = lines.findIndex((line, index) => index > flagLine && line.includes('<string>'))
      if (flagLine === -1 || valueLine === -1) continue
      return {line: valueLine + 1, text: lines[valueLine].trim(), reason: (error as Error).message}
    }
  }

  const keyLine = lines.findIndex((line) => line.trim() === '<key>ProgramArguments</key>')
  return keyLine === -1 ? undefined : {line: keyLine + 1, text: lines[keyLine].trim(), reason: 'serve refused its arguments'}
}
