import {NAMES} from '../paths.js'
import {jobNames, prepare, type Service, servesLine, verified} from './core.js'
import type {OperateOptions, ServiceResult} from './types.js'

/**
 * `service start`: starts the installed server, and its watchdog when
 * installed, through the supervisor (jobs that run are left alone), then
 * waits for the server's health (unless `--wait 0`). The enablement stays
 * as it was.
 */
export async function start(service: Service, options: OperateOptions): Promise<ServiceResult> {
  const startedAt = service.effects.now()
  const ready = await prepare(service, 'start')
  if ('success' in ready) return ready
  const {driver} = service
  const wasRunning = ready.roles.every((role) => ready.jobs[role].running)
  await driver.start(ready.roles, ready.jobs)
  const done: ServiceResult = {
    success: true,
    platform: driver.platform,
    message: wasRunning ? `${NAMES.serviceName} service was already running.` : `Started ${jobNames(driver, ready.roles)}.`,
    details: [servesLine(ready.target), `Stop it: ${NAMES.bin} service stop`],
  }
  return verified(service, 'start', ready.target, {startedAt, waitSeconds: options.waitSeconds}, done)
}
