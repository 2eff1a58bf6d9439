import {homedir, userInfo} from 'node:os'

import {UserError} from '../errors.js'
import {execCommand} from '../exec.js'
import {withLock} from '../lock.js'
import {DEFAULT_HOST, DEFAULT_PORT, NAMES, pathsFor} from '../paths.js'
import {parsePort, validateHost} from '../validate.js'
import type {Backend, PlatformName, ServiceContext, ServiceResult, StatusResult} from './types.js'

export type ServiceCommand = 'install' | 'uninstall' | 'status'

/**
 * The one place that maps a platform to its supervisor backend. Backends
 * load lazily, so each command pays only for the backend it uses.
 */
const BACKENDS: Partial<Record<NodeJS.Platform, (ctx: ServiceContext) => Promise<Backend>>> = {
  linux: async (ctx) => (await import('./systemd.js')).createSystemdBackend(ctx),
  darwin: async (ctx) => (await import('./launchd.js')).createLaunchdBackend(ctx),
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
    nodePath: process.execPath,
    resolveBinary,
  }
}

function unsupported(command: ServiceCommand, platform: NodeJS.Platform): ServiceResult | StatusResult {
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

/** Flags of `service install`, as the oclif parser and the fast path deliver them. */
export interface InstallFlags {
  host?: string
  port?: string
  watchdog?: boolean
  'dry-run'?: boolean
}

/**
 * Runs one service command on `platform` and returns its result; failures
 * the user can act on are results (success false), never exceptions.
 */
export async function runServiceCommand(
  command: ServiceCommand,
  flags: InstallFlags,
  options: {platform?: NodeJS.Platform; context?: ServiceContext} = {},
): Promise<ServiceResult | StatusResult> {
  const platform = options.platform ?? process.platform
  const ctx = options.context ?? (await createServiceContext(command))
  const backend = await backendFor(platform, ctx)
  if (!backend) return unsupported(command, platform)
  switch (command) {
    case 'install': {
      let host: string
      let port: number
      try {
        host = validateHost(flags.host ?? DEFAULT_HOST)
        port = parsePort(flags.port ?? DEFAULT_PORT)
      } catch (error) {
        if (!(error instanceof UserError)) throw error
        return {success: false, platform: backend.platform, message: error.message, details: error.details}
      }

      const options = {host, port, watchdog: flags.watchdog ?? true, dryRun: flags['dry-run'] ?? false}
      return options.dryRun ? backend.install(options) : locked(ctx, backend.platform, () => backend.install(options))
    }

    case 'uninstall': {
      return locked(ctx, backend.platform, () => backend.uninstall())
    }

    case 'status': {
      return backend.status()
    }
  }
}
