/**
 * Steps shared by the real-systemd fault tests and bench/recovery.ts: install
 * the service from this build inside a harness manager, wait for it to be
 * steady, shorten the watchdog's intervals with a drop-in, and find the
 * `amp-distro serve` processes a manager runs.
 */
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {pathsFor} from '../../src/lib/paths.js'
import {readPid} from '../../src/lib/pidfile.js'
import {isToolProcess} from '../../src/lib/procs.js'
import {directive, parseUnit, SERVER_UNIT, WATCHDOG_UNIT} from '../../src/lib/service/systemd-unit.js'
import {RUN_JS} from '../helpers/cli.js'
import {healthPid} from '../helpers/processes.js'
import {pidsInMountNamespace, type RunResult, type UserManager, waitFor} from './systemd-harness.js'

/** Runs the built CLI inside the manager's namespace (as the user would from a shell there). */
export function cli(um: UserManager, args: string[], entry = RUN_JS): Promise<RunResult> {
  return um.run(process.execPath, [entry, ...args])
}

/** Runs the built CLI inside the namespace and throws with its output when it fails. */
export async function cliOk(um: UserManager, args: string[], entry = RUN_JS): Promise<string> {
  const result = await cli(um, args, entry)
  if (result.code !== 0) throw new Error(`amp-distro ${args.join(' ')} exited ${result.code}:\n${result.stdout}${result.stderr}`)
  return result.stdout
}

/** `systemctl --user …` that throws when it fails. */
export async function systemctlOk(um: UserManager, ...args: string[]): Promise<string> {
  const result = await um.systemctl(...args)
  if (result.code !== 0) throw new Error(`systemctl --user ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`)
  return result.stdout
}

/** Waits until the server unit is active and /api/health on 127.0.0.1:`port` answers from its main PID; returns that PID. */
export function steadyServer(um: UserManager, port: number, timeoutMs = 60_000): Promise<number> {
  return waitFor(
    async () => {
      const [pid, main] = await Promise.all([healthPid(port, 1000), um.mainPid(SERVER_UNIT)])
      return pid !== undefined && pid === main ? pid : undefined
    },
    {timeoutMs, intervalMs: 100, what: 'the server unit to be active and answering health from its main PID'},
  )
}

/** Waits until the watchdog unit runs and its process has written watchdog.pid; returns its PID. */
export function steadyWatchdog(um: UserManager, timeoutMs = 60_000): Promise<number> {
  const pidFile = pathsFor(um.home, um.env).watchdogPid
  return waitFor(
    async () => {
      const main = await um.mainPid(WATCHDOG_UNIT)
      return main > 0 && readPid(pidFile) === main ? main : undefined
    },
    {timeoutMs, intervalMs: 100, what: 'the watchdog unit to run and write its PID file'},
  )
}

/**
 * Makes the installed watchdog check every `checkInterval` seconds and
 * restart after `restartAfter` seconds of failures: a drop-in that clears
 * `ExecStart=` and sets it again with the flags added, then daemon-reload and
 * a restart of the watchdog unit. Returns the drop-in's path.
 */
export async function shortenWatchdogIntervals(um: UserManager, checkInterval: number, restartAfter: number): Promise<string> {
  const unitFile = pathsFor(um.home, um.env).systemdWatchdogUnit
  const exec = directive(parseUnit(readFileSync(unitFile, 'utf8')), 'Service', 'ExecStart')
  if (exec === undefined) throw new Error(`no ExecStart= in ${unitFile}`)
  const dir = `${unitFile}.d`
  mkdirSync(dir, {recursive: true})
  const dropIn = join(dir, 'short-intervals.conf')
  writeFileSync(dropIn, `[Service]\nExecStart=\nExecStart=${exec} --check-interval ${checkInterval} --restart-after ${restartAfter}\n`)
  await systemctlOk(um, 'daemon-reload')
  await systemctlOk(um, 'restart', WATCHDOG_UNIT)
  return dropIn
}

/** The `amp-distro serve` processes running in the manager's namespace (not other tests' servers on this machine). */
export function servePids(um: UserManager): number[] {
  return pidsInMountNamespace(um.namespace).filter((pid) => isToolProcess(pid, 'serve'))
}
