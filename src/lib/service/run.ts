import {homedir, release, userInfo} from 'node:os'

import {execCommand, streamLines} from '../process/exec.js'
import {withLock} from '../process/lock.js'
import {DEFAULT_HOST, DEFAULT_PORT, NAMES, pathsFor} from '../paths.js'
import {packageInfo} from '../pkg.js'
import {parsePort, parseWhole, validateHost} from '../validate.js'
import {asResult, realEffects} from './core.js'
import {driverFor} from './drivers/registry.js'
import {install} from './install.js'
import {logs} from './logs.js'
import {restart} from './restart.js'
import {start} from './start.js'
import {status} from './status.js'
import {stop} from './stop.js'
import type {LogLine, ServiceContext, ServiceResult, StatusResult} from './types.js'
import {uninstall} from './uninstall.js'

export type ServiceCommand = 'install' | 'uninstall' | 'status' | 'start' | 'stop' | 'restart' | 'logs'

function accountName(): string {
  try {
    return userInfo().username
  } catch {
    // No passwd entry (a container with an arbitrary UID): linger then has no name to go by.
    return String(process.getuid?.() ?? '')
  }
}

/**
 * The real outside world for the service commands. Binary resolution (and
 * the `which` package behind it) loads only for install, the one command
 * that uses it, which keeps `service status` quick to start.
 */
export async function createServiceContext(command: ServiceCommand): Promise<ServiceContext> {
  const env = process.env
  let resolveBinary: ServiceContext['resolveBinary'] = () => {
    throw new Error(`binary resolution is only loaded for service install, not service ${command}`)
  }

  if (command === 'install') {
    const binary = await import('../binary.js')
    resolveBinary = () => binary.resolveBinary({argv: process.argv, env, cwd: process.cwd()})
  }

  return {
    home: homedir(),
    env,
    uid: process.getuid?.() ?? -1,
    user: env.USER || accountName(),
    exec: execCommand,
    stream: streamLines,
    version: packageInfo().version,
    osRelease: release(),
    nodePath: process.execPath,
    resolveBinary,
  }
}

function unsupported(command: ServiceCommand, platform: NodeJS.Platform, cliVersion: string): ServiceResult | StatusResult {
  const details = [
    `Service management supports Linux (systemd) and macOS (launchd); this machine runs ${platform}.`,
    `Run the server in the foreground instead: ${NAMES.bin} serve`,
    'To keep it running, register that command with your own supervisor (on Windows: Task Scheduler or NSSM).',
  ]
  if (command !== 'status') return {success: false, platform: 'unsupported', message: 'unsupported platform', details}
  const none = {installed: false, state: 'unsupported'}
  return {
    success: true,
    platform: 'unsupported',
    message: 'Service management is not supported on this platform.',
    details,
    installed: false,
    server: none,
    watchdog: {...none},
    health: null,
    warnings: [],
    cliVersion,
  }
}

/** Flags of the service commands, as the oclif parser and the fast path deliver them. */
export interface ServiceFlags {
  host?: string
  port?: string
  watchdog?: boolean
  'dry-run'?: boolean
  /** install, start, restart: seconds to wait for health (default 30). */
  wait?: string
  /** logs: how many lines (default 50). */
  lines?: string
  follow?: boolean
  /** logs: ends a follow. */
  signal?: AbortSignal
  /** logs: receives each line. */
  write?: (line: LogLine) => void
}

/** How long install, start and restart wait for the new server to answer by default. */
export const DEFAULT_WAIT_SECONDS = 30
/** How many lines `service logs` prints by default. */
export const DEFAULT_LOG_LINES = 50

const waitSeconds = (flags: ServiceFlags) => parseWhole('--wait', flags.wait ?? DEFAULT_WAIT_SECONDS, 0)

/**
 * Runs one service command on `platform` and returns its result; failures
 * the user can act on are results (success false), never exceptions.
 *
 * 1. Picks the platform's driver (none: the unsupported-platform answer).
 * 2. Validates the flags before anything runs.
 * 3. Runs the operation (install.ts, start.ts…), those that change the
 *    installed jobs under the service lock, so two of them never
 *    interleave their steps.
 */
export async function runServiceCommand(
  command: ServiceCommand,
  flags: ServiceFlags,
  options: {platform?: NodeJS.Platform; context?: ServiceContext} = {},
): Promise<ServiceResult | StatusResult> {
  const platform = options.platform ?? process.platform
  const ctx = options.context ?? (await createServiceContext(command))
  const driver = await driverFor(platform, {...ctx, command: `service ${command}`})
  if (!driver) return unsupported(command, platform, ctx.version)
  const service = {driver, ctx, effects: realEffects}
  const locked = <T>(work: () => Promise<T>) => withLock(pathsFor(ctx.home, ctx.env).serviceLock, work)
  return asResult(driver.platform, async () => {
    switch (command) {
      case 'install': {
        const options = {
          host: validateHost(flags.host ?? DEFAULT_HOST),
          port: parsePort(flags.port ?? DEFAULT_PORT),
          watchdog: flags.watchdog ?? true,
          dryRun: flags['dry-run'] ?? false,
          waitSeconds: waitSeconds(flags),
        }
        return options.dryRun ? install(service, options) : locked(() => install(service, options))
      }

      case 'start':
      case 'restart': {
        const options = {waitSeconds: waitSeconds(flags)}
        return locked(() => (command === 'start' ? start : restart)(service, options))
      }

      case 'stop': {
        return locked(() => stop(service))
      }

      case 'uninstall': {
        return locked(() => uninstall(service))
      }

      case 'logs': {
        const lines = parseWhole('--lines', flags.lines ?? DEFAULT_LOG_LINES, 0)
        return logs(service, {lines, follow: flags.follow ?? false, signal: flags.signal ?? new AbortController().signal, write: flags.write ?? (() => {})})
      }

      case 'status': {
        return status(service)
      }
    }
  })
}
