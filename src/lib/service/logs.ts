import {hasFiles, notInstalled, type Service} from './core.js'
import {ROLES} from './driver.js'
import type {LogsOptions, ServiceResult} from './types.js'

/** `service logs`: the server's and the watchdog's output as the supervisor keeps it, oldest first, followed when asked. */
export async function logs({driver}: Service, options: LogsOptions): Promise<ServiceResult> {
  if (!ROLES.some((role) => hasFiles(driver, role))) return notInstalled(driver, 'show logs of')
  const answer = await driver.logs(options)
  return {success: answer.readable, platform: driver.platform, message: answer.message, details: answer.details}
}
