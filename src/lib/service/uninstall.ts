import {NAMES, pathsFor} from '../paths.js'
import {addingDetail, failed, hasFiles, type Service} from './core.js'
import {ROLES} from './driver.js'
import type {ServiceResult} from './types.js'

/**
 * `service uninstall`, for every supervisor:
 * 1. asks the supervisor for both jobs' state; when it does not answer,
 *    nothing is removed (a job it still runs could not be stopped);
 * 2. unloads each job that has files or still runs without them, the
 *    watchdog first, so it cannot start the server again meanwhile;
 * 3. removes the definition files, and has the supervisor forget the jobs.
 * Data under `~/.amplifier` is left alone. Nothing installed is a success.
 */
export async function uninstall({driver, ctx}: Service): Promise<ServiceResult> {
  const notInstalled: ServiceResult = {success: true, platform: driver.platform, message: `${NAMES.serviceName} service is not installed; nothing to do.`, details: []}
  const withFiles = ROLES.filter((role) => hasFiles(driver, role))
  const inspection = await driver.inspect()
  if ('unreachable' in inspection) {
    if (withFiles.length === 0) return notInstalled
    return failed(driver.platform, `${driver.manager} is not reachable; cannot stop the service, nothing was removed.`, inspection.unreachable)
  }

  const {jobs} = inspection
  const roles = [...ROLES].reverse().filter((role) => withFiles.includes(role) || jobs[role].orphaned)
  if (roles.length === 0) return notInstalled

  const details: string[] = []
  for (const role of roles) {
    const line = await addingDetail(`Try again: ${NAMES.bin} service uninstall`, () => driver.unload(role, jobs[role]))
    if (line) details.push(line)
  }

  for (const role of roles) details.push(...driver.remove(role).map((file) => `Removed ${file}`))

  await driver.forget?.(roles)
  details.push(`Data in ${pathsFor(ctx.home, ctx.env).amplifierHome} was left in place.`)
  return {success: true, platform: driver.platform, message: `Uninstalled ${NAMES.serviceName} service.`, details}
}
