import type {Driver, DriverContext, DriverModule} from '../driver.js'
import type {PlatformName} from '../types.js'

/** One supervisor this tool can drive: the platforms it serves, and its module, loaded only when used. */
export interface DriverEntry {
  name: string
  platforms: readonly NodeJS.Platform[]
  /** The platform name results report. */
  reports: Exclude<PlatformName, 'unsupported'>
  load: () => Promise<DriverModule>
}

/**
 * Every driver, in the order they are tried. A new supervisor is one entry
 * here and one folder beside this file; the core asks only the Driver interface.
 */
export const DRIVERS: readonly DriverEntry[] = [
  {name: 'systemd', platforms: ['linux'], reports: 'linux', load: () => import('./systemd/driver.js')},
  {name: 'launchd', platforms: ['darwin'], reports: 'macos', load: () => import('./launchd/driver.js')},
]

/** The driver for `platform`: the first entry that serves it; undefined where service management is not supported. */
export async function driverFor(platform: NodeJS.Platform, ctx: DriverContext): Promise<Driver | undefined> {
  const entry = DRIVERS.find((candidate) => candidate.platforms.includes(platform))
  return entry ? (await entry.load()).createDriver(ctx) : undefined
}

/** The platform name results report: the one the platform's driver reports, or unsupported. */
export function platformName(platform: NodeJS.Platform): PlatformName {
  return DRIVERS.find((entry) => entry.platforms.includes(platform))?.reports ?? 'unsupported'
}

/**
 * The driver of the supervisor that started this process as one of our
 * jobs (each driver judges from what its supervisor gives this very
 * process), or undefined when none did: the watchdog then runs standalone.
 */
export async function supervisorOf(env: NodeJS.ProcessEnv, pid: number, ctx: DriverContext): Promise<Driver | undefined> {
  for (const entry of DRIVERS) {
    const module = await entry.load()
    if (module.startedBy(env, pid)) return module.createDriver(ctx)
  }

  return undefined
}
