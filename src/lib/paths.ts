import {join} from 'node:path'

/** Every fixed name the tool uses, in one place. */
export const NAMES = {
  bin: 'amp-distro',
  deprecatedBin: 'amp-distro-server',
  packageName: 'amp-distro',
  /** The npm package's name before 0.3.0: a server an older install started is still this tool's. */
  previousPackageName: 'amplifier-distro',
  /** How messages name the service, on every platform: the systemd unit's name. */
  serviceName: 'amplifier-distro',
  systemdUnit: 'amplifier-distro',
  systemdWatchdogUnit: 'amplifier-distro-watchdog',
  launchdLabel: 'com.amplifier.distro',
  launchdWatchdogLabel: 'com.amplifier.distro.watchdog',
} as const

export const DEFAULT_HOST = '127.0.0.1'
export const DEFAULT_PORT = 8400

/**
 * The watchdog's defaults, which the installed units use (README, "The
 * watchdog's defaults"): a check every 10 s and a restart once the server
 * has not answered for 20 s replace a hung server well within a minute,
 * while a server that is only busy (its event loop blocked for seconds at a
 * time) still answers each check within its time-out and is never restarted.
 */
export const DEFAULT_CHECK_INTERVAL_S = 10
export const DEFAULT_RESTART_AFTER_S = 20

/** `host:port`, with IPv6 addresses in brackets. */
export function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`
}

/** `http://host:port`, with IPv6 addresses in brackets. */
export function serverUrl(host: string, port: number): string {
  return `http://${hostPort(host, port)}`
}

export interface Paths {
  amplifierHome: string
  envFile: string
  serverDir: string
  serverPid: string
  watchdogPid: string
  watchdogLog: string
  crashLog: string
  /** Held while a service command changes the installed units. */
  serviceLock: string
  serverStdoutLog: string
  serverStderrLog: string
  watchdogStdoutLog: string
  watchdogStderrLog: string
  systemdUserDir: string
  systemdServerUnit: string
  systemdWatchdogUnit: string
  systemdSocketUnit: string
  launchAgentsDir: string
  launchdServerPlist: string
  launchdWatchdogPlist: string
}

/**
 * Derives every path the tool reads or writes from a home directory and an
 * environment. Nothing is read from the process here, so callers (and tests)
 * decide which home and environment count.
 */
export function pathsFor(home: string, env: NodeJS.ProcessEnv = {}): Paths {
  const amplifierHome = join(home, '.amplifier')
  const serverDir = join(amplifierHome, 'server')
  const configHome = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(home, '.config')
  const systemdUserDir = join(configHome, 'systemd', 'user')
  const launchAgentsDir = join(home, 'Library', 'LaunchAgents')
  return {
    amplifierHome,
    envFile: join(amplifierHome, '.env'),
    serverDir,
    serverPid: join(serverDir, 'server.pid'),
    watchdogPid: join(serverDir, 'watchdog.pid'),
    watchdogLog: join(serverDir, 'watchdog.log'),
    crashLog: join(serverDir, 'crash.log'),
    serviceLock: join(serverDir, 'service.lock'),
    serverStdoutLog: join(serverDir, 'server.out.log'),
    serverStderrLog: join(serverDir, 'server.err.log'),
    watchdogStdoutLog: join(serverDir, 'watchdog.out.log'),
    watchdogStderrLog: join(serverDir, 'watchdog.err.log'),
    systemdUserDir,
    systemdServerUnit: join(systemdUserDir, `${NAMES.systemdUnit}.service`),
    systemdWatchdogUnit: join(systemdUserDir, `${NAMES.systemdWatchdogUnit}.service`),
    systemdSocketUnit: join(systemdUserDir, `${NAMES.systemdUnit}.socket`),
    launchAgentsDir,
    launchdServerPlist: join(launchAgentsDir, `${NAMES.launchdLabel}.plist`),
    launchdWatchdogPlist: join(launchAgentsDir, `${NAMES.launchdWatchdogLabel}.plist`),
  }
}
