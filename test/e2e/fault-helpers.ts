/**
 * Shared pieces of the fault suites that run the built CLI inside a real systemd user manager
 * (install races, the soak).
 */
import {expect} from 'chai'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {checkHealth} from '../../src/lib/health.js'
import {pathsFor} from '../../src/lib/paths.js'
import {isToolProcess} from '../../src/lib/procs.js'
import {readUnitCommand} from '../../src/lib/service/systemd-unit.js'
import {pidsInMountNamespace, type RunResult, type UserManager} from './systemd-harness.js'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const CLI = join(ROOT, 'bin', 'run.js')
export const SERVER = 'amplifier-distro.service'
export const WATCHDOG = 'amplifier-distro-watchdog.service'

/** Runs the built CLI inside the manager's namespace, with the manager's environment. */
export function cliIn(manager: UserManager, ...args: string[]): Promise<RunResult> {
  return manager.run(process.execPath, [CLI, ...args], {timeoutMs: 120_000})
}

export function expectOk(result: RunResult, what = 'exit code'): RunResult {
  expect(result.code, `${what}; stdout: ${result.stdout}; stderr: ${result.stderr}`).to.equal(0)
  return result
}

export function unitDir(manager: UserManager): string {
  return join(manager.home, '.config', 'systemd', 'user')
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

/** Live `amp-distro <subcommand>` processes of this manager (its mount namespace), recognised as the tool recognises its own. */
export function toolProcesses(manager: UserManager, subcommand: 'serve' | 'watchdog'): number[] {
  return pidsInMountNamespace(manager.namespace).filter((pid) => isToolProcess(pid, subcommand))
}

/** Files in the unit folder that are neither a unit nor a folder: temporary files left by an install. */
export function strayUnitFiles(manager: UserManager): string[] {
  const dir = unitDir(manager)
  if (!existsSync(dir)) return []
  return readdirSync(dir).filter((name) => !name.endsWith('.service') && name !== 'default.target.wants')
}

/** The run-time files a service leaves in ~/.amplifier/server that must not outlive it. */
export function leftoverRuntimeFiles(manager: UserManager): string[] {
  const paths = pathsFor(manager.home, manager.env)
  return [paths.serverPid, paths.watchdogPid, paths.serviceLock].filter((file) => existsSync(file))
}
