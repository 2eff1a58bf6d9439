import {existsSync} from 'node:fs'

import {EXIT_CONFIG} from '../../../errors.js'
import type {DriverContext} from '../../driver.js'
import type {ExecResult} from '../../types.js'
import {SERVER_UNIT, SOCKET_UNIT, WATCHDOG_UNIT} from './unit.js'

export const WSL_SYSTEMD_HINT = 'On WSL2, enable systemd first: put "[boot]" and "systemd=true" in /etc/wsl.conf, then run "wsl --shutdown" from Windows.'

/** One unit's state as `systemctl --user show` reports it. */
export interface ShownUnit {
  LoadState?: string
  ActiveState?: string
  SubState?: string
  MainPID?: string
  Result?: string
  FragmentPath?: string
  /** The main process's exit status once it has exited (78: a configuration that can never work). */
  ExecMainStatus?: string
  /** How many times systemd restarted the unit automatically since it was last started by hand. */
  NRestarts?: string
  /** A socket unit's addresses while it listens: `127.0.0.1:8400 (Stream)`. */
  Listen?: string
}

/** The properties status, start, stop and restart read. */
export const SHOW_PROPERTIES = ['LoadState', 'ActiveState', 'SubState', 'MainPID', 'Result', 'FragmentPath', 'ExecMainStatus', 'NRestarts', 'Listen'] as const

/** Parses `systemctl show` output for several units: one block of `Key=value` lines per unit, blank lines between. */
export function parseShow(stdout: string): ShownUnit[] {
  return stdout
    .trim()
    .split(/\n\s*\n/)
    .map((block) => {
      const unit: Record<string, string> = {}
      for (const line of block.split('\n')) {
        const eq = line.indexOf('=')
        if (eq > 0) unit[line.slice(0, eq)] = line.slice(eq + 1)
      }

      return unit as ShownUnit
    })
}

/** The first line a program wrote, stderr first: what to quote when it failed. */
export function firstLine(result: ExecResult): string {
  return (result.stderr.trim() || result.stdout.trim()).split('\n')[0] ?? ''
}

/** Why the user manager cannot be used, from a failed `systemctl --user` answer. */
export function managerProblem(answer: ExecResult): string[] {
  if (answer.code === 127) return ['systemctl was not found on PATH: this system does not run systemd.', WSL_SYSTEMD_HINT]
  return [`systemctl --user answered: ${firstLine(answer)}`, 'amp-distro service needs a running systemd user manager (systemctl --user).', WSL_SYSTEMD_HINT]
}

/** A unit that is running, starting, stopping or failed: anything but stopped cleanly. */
export function isUp(unit: ShownUnit): boolean {
  return unit.ActiveState !== undefined && unit.ActiveState !== 'inactive'
}

/** A unit systemd gave up on because it exited with EXIT_CONFIG: a configuration that can never work (RestartPreventExitStatus=). */
export function exitedWithConfigError(unit: ShownUnit): boolean {
  return unit.ActiveState === 'failed' && unit.ExecMainStatus === String(EXIT_CONFIG)
}

/** The unit's main PID, or undefined while it has none. */
export function mainPidOf(unit: ShownUnit): number | undefined {
  const pid = Number(unit.MainPID)
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
}

/** The state in systemd's words, for people: `active (running)`, `failed (exit-code)`, `inactive (dead)`. */
export function stateText(unit: ShownUnit): string {
  const active = unit.ActiveState ?? 'unknown'
  if (active === 'failed') return `failed (${unit.Result ?? 'unknown reason'})`
  return unit.SubState && unit.SubState !== active ? `${active} (${unit.SubState})` : active
}

/**
 * True for a unit that still runs (or failed) although its file is gone:
 * deleted without a daemon-reload (systemd still names our file), or
 * reloaded while it runs (systemd then names no file at all). A unit loaded
 * from another folder is someone else's and is left alone.
 */
export function orphaned(unit: ShownUnit, file: string): boolean {
  const ours = unit.FragmentPath === file || (unit.LoadState === 'not-found' && unit.FragmentPath === '')
  return ours && !existsSync(file) && isUp(unit)
}

/** The three units as the manager sees them, or why the manager cannot be reached. */
export type ShowAnswer = {units: Record<string, ShownUnit>} | {problem: string[]}

/** `systemctl --user` for one context: the runner every systemd operation goes through. */
export interface Systemctl {
  /** Runs `systemctl --user …args`. */
  run(...args: string[]): Promise<ExecResult>
  /** The three units' state in one call; a failed answer means the manager cannot be reached. */
  show(): Promise<ShowAnswer>
  /** A unit's main PID right now (undefined while it has none, or when the manager does not answer). */
  mainPid(unit: string): Promise<number | undefined>
  /** The units' ActiveState right now, in the order asked (undefined when the manager does not answer). */
  activeStates(...units: string[]): Promise<string[] | undefined>
}

/** The runner for `ctx`: every call is `systemctl --user` with the context's environment. */
export function createSystemctl(ctx: Pick<DriverContext, 'exec' | 'env'>): Systemctl {
  const run = (...args: string[]) => ctx.exec('systemctl', ['--user', ...args], {env: ctx.env})
  return {
    run,
    async show() {
      const answer = await run('show', `--property=${SHOW_PROPERTIES.join(',')}`, SERVER_UNIT, WATCHDOG_UNIT, SOCKET_UNIT)
      if (answer.code !== 0) return {problem: managerProblem(answer)}
      const [server, watchdog, socket] = parseShow(answer.stdout)
      return {units: {[SERVER_UNIT]: server ?? {}, [WATCHDOG_UNIT]: watchdog ?? {}, [SOCKET_UNIT]: socket ?? {}}}
    },
    async mainPid(unit) {
      const answer = await run('show', '--property=MainPID', '--value', unit)
      return answer.code === 0 ? mainPidOf({MainPID: answer.stdout.trim()}) : undefined
    },
    async activeStates(...units) {
      const answer = await run('show', '--property=ActiveState', ...units)
      return answer.code === 0 ? parseShow(answer.stdout).map((unit) => unit.ActiveState ?? 'unknown') : undefined
    },
  }
}

