/**
 * Steps shared by the suites and benchmarks that run the built CLI inside a
 * real systemd user manager: run the CLI there, wait for the service to be
 * steady, shorten the watchdog's intervals with a drop-in, find the tool's
 * processes a manager runs, find what an install or uninstall left behind,
 * and hold a port with a program that is not the server.
 */
import {expect} from 'chai'
import {existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {createServer, type Server} from 'node:http'
import {join} from 'node:path'

import {checkHealth} from '../../src/lib/server/health.js'
import {pathsFor} from '../../src/lib/paths.js'
import {readPid} from '../../src/lib/process/pidfile.js'
import {isToolProcess} from '../../src/lib/process/procs.js'
import {directive, parseUnit, readUnitCommand, SERVER_UNIT, WATCHDOG_UNIT} from '../../src/lib/service/drivers/systemd/unit.js'
import {RUN_JS} from '../helpers/cli.js'
import {healthPid} from '../helpers/processes.js'
import {pidsInMountNamespace, type RunResult, type UserManager, waitFor} from './systemd-harness.js'

export {SERVER_UNIT as SERVER, WATCHDOG_UNIT as WATCHDOG} from '../../src/lib/service/drivers/systemd/unit.js'

/** Runs the built CLI inside the manager's namespace (as the user would from a shell there). */
export function cli(um: UserManager, args: string[], entry = RUN_JS): Promise<RunResult> {
  return um.run(process.execPath, [entry, ...args], {timeoutMs: 120_000})
}

/** Runs the built CLI inside the namespace and throws with its output when it fails. */
export async function cliOk(um: UserManager, args: string[], entry = RUN_JS): Promise<string> {
  const result = await cli(um, args, entry)
  if (result.code !== 0) throw new Error(`amp-distro ${args.join(' ')} exited ${result.code}:\n${result.stdout}${result.stderr}`)
  return result.stdout
}

/** Asserts a zero exit code, showing the output when it is not. */
export function expectOk(result: RunResult, what = 'exit code'): RunResult {
  expect(result.code, `${what}; stdout: ${result.stdout}; stderr: ${result.stderr}`).to.equal(0)
  return result
}

/** `systemctl --user …` that throws when it fails. */
export async function systemctlOk(um: UserManager, ...args: string[]): Promise<string> {
  const result = await um.systemctl(...args)
  if (result.code !== 0) throw new Error(`systemctl --user ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`)
  return result.stdout
}

export function unitDir(um: UserManager): string {
  return pathsFor(um.home, um.env).systemdUserDir
}

/** True when `/api/health` on 127.0.0.1:port answers healthy within 2 s. */
export async function isHealthy(port: number): Promise<boolean> {
  return (await checkHealth(`http://127.0.0.1:${port}/api/health`, 2000)).healthy
}

/** The port an installed unit file names in its ExecStart, or undefined when the file is absent. */
export function unitPort(file: string): number | undefined {
  if (!existsSync(file)) return undefined
  const command = readUnitCommand(readFileSync(file, 'utf8'))
  if (command === undefined) throw new Error(`${file} has no ExecStart`)
  return command.port
}

/** The value after `--port` on a live process's command line. */
export function processPort(pid: number): number | undefined {
  let argv: string[]
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0$/, '').split('\0')
  } catch {
    return undefined
  }

  const at = argv.indexOf('--port')
  return at === -1 ? undefined : Number(argv[at + 1])
}

/** Live `amp-distro <subcommand>` processes of this manager (its mount namespace, not other tests'), recognised as the tool recognises its own. */
export function toolProcesses(um: UserManager, subcommand: 'serve' | 'watchdog'): number[] {
  return pidsInMountNamespace(um.namespace).filter((pid) => isToolProcess(pid, subcommand))
}

/** Files in the unit folder that are neither a unit nor a folder: temporary files left by an install. */
export function strayUnitFiles(um: UserManager): string[] {
  const dir = unitDir(um)
  if (!existsSync(dir)) return []
  return readdirSync(dir).filter((name) => !name.endsWith('.service') && !name.endsWith('.socket') && name !== 'default.target.wants')
}

/** The run-time files a service leaves in ~/.amplifier/server that must not outlive it. */
export function leftoverRuntimeFiles(um: UserManager): string[] {
  const paths = pathsFor(um.home, um.env)
  return [paths.serverPid, paths.watchdogPid, paths.serviceLock].filter((file) => existsSync(file))
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

/** An HTTP listener that is not amp-distro (it answers `418 unrelated`), holding a port on 127.0.0.1 in this process. */
export async function holdPort(port: number): Promise<Server> {
  const server = createServer((_req, res) => {
    res.statusCode = 418
    res.end('unrelated')
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  return server
}

/** Closes a listener from holdPort (nothing when it is already closed). */
export function release(server: Server | undefined): Promise<void> {
  if (server === undefined || !server.listening) return Promise.resolve()
  server.closeAllConnections()
  return new Promise((resolve) => server.close(() => resolve()))
}
