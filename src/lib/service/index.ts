import {homedir, release, userInfo} from 'node:os'

import {UserError} from '../errors.js'
import {execCommand, streamLines} from '../exec.js'
import {withLock} from '../lock.js'
import {DEFAULT_HOST, DEFAULT_PORT, NAMES, pathsFor} from '../paths.js'
import {packageInfo} from '../pkg.js'
import {parsePort, parseWhole, validateHost} from '../validate.js'
import type {Backend, LogLine, PlatformName, ServiceContext, ServiceResult, StatusResult} from './types.js'

export type ServiceCommand = 'install' | 'uninstall' | 'status' | 'start' | 'stop' | 'restart' | 'logs'

/**
 * The one place that maps a platform to its supervisor backend. Backends
 * load lazily, so each command pays only for the backend it uses.
 */
const BACKENDS: Partial<Record<NodeJS.Platform, (ctx: ServiceContext) => Promise<Backend>>> = {
  linux: async (ctx) => (await import('./systemd/backend.js')).createSystemdBackend(ctx),
  darwin: async (ctx) => (await import('./launchd/backend.js')).createLaunchdBackend(ctx),
}

/** The backend for `platform`, or undefined where service management is not supported. */
export async function backendFor(platform: NodeJS.Platform, ctx: ServiceContext): Promise<Backend | undefined> {
  return BACKENDS[platform]?.(ctx)
}

/** The platform name results report: linux, macos, or unsupported. */
export function platformName(platform: NodeJS.Platform): PlatformName {
  if (!BACKENDS[platform]) return 'unsupported'
  return platform === 'darwin' ? 'macos' : 'linux'
}

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

/**
 * Runs a change to the installed units under the service lock, so two
 * installs (or an install and an uninstall) never interleave their steps;
 * a lock that cannot be had within its timeout becomes a failed result.
 */
async function locked(ctx: ServiceContext, platform: PlatformName, work: () => Promise<ServiceResult>): Promise<ServiceResult> {
  try {
    return await withLock(pathsFor(ctx.home, ctx.env).serviceLock, work)
  } catch (error) {
    if (!(error instanceof UserError)) throw error
    return {success: false, platform, message: error.message, details: error.details}
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

/** Validates flags before anything runs; a UserError becomes a failed result. */
function checked<T>(platform: PlatformName, read: () => T): T | ServiceResult {
  try {
    return read()
  } catch (error) {
    if (!(error instanceof UserError)) throw error
    return {success: false, platform, message: error.message, details: error.details}
  }
}

function isResult(value: unknown): value is ServiceResult {
  return typeof value === 'object' && value !== null && 'success' in value
}

const waitSeconds = (flags: ServiceFlags) => parseWhole('--wait', flags.wait ?? DEFAULT_WAIT_SECONDS, 0)

/**
 * Runs one service command on `platform` and returns its result; failures
 * the user can act on are results (success false), never exceptions.
 */
export async function runServiceCommand(
  command: ServiceCommand,
  flags: ServiceFlags,
  options: {platform?: NodeJS.Platform; context?: ServiceContext} = {},
): Promise<ServiceResult | StatusResult> {
  const platform = options.platform ?? process.platform
  const ctx = options.context ?? (await createServiceContext(command))
  const backend = await backendFor(platform, ctx)
  if (!backend) return unsupported(command, platform, ctx.version)
  switch (command) {
    case 'install': {
      const options = checked(backend.platform, () => ({
        host: validateHost(flags.host ?? DEFAULT_HOST),
        port: parsePort(flags.port ?? DEFAULT_PORT),
        watchdog: flags.watchdog ?? true,
        dryRun: flags['dry-run'] ?? false,
        waitSeconds: waitSeconds(flags),
      }))
      if (isResult(options)) return options
      return options.dryRun ? backend.install(options) : locked(ctx, backend.platform, () => backend.install(options))
    }

    case 'start':
    case 'restart': {
      const seconds = checked(backend.platform, () => waitSeconds(flags))
      if (isResult(seconds)) return seconds
      return locked(ctx, backend.platform, () => backend[command]({waitSeconds: seconds}))
    }

    case 'stop': {
      return locked(ctx, backend.platform, () => backend.stop())
    }

    case 'logs': {
      const lines = checked(backend.platform, () => parseWhole('--lines', flags.lines ?? DEFAULT_LOG_LINES, 0))
      if (isResult(lines)) return lines
      return backend.logs({
        lines,
        follow: flags.follow ?? false,
        signal: flags.signal ?? new AbortController().signal,
        write: flags.write ?? (() => {}),
      })
    }

    case 'uninstall': {
      return locked(ctx, backend.platform, () => backend.uninstall())
    }

    case 'status': {
      return backend.status()
    }
  }
}
