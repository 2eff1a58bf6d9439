import {jobNames, prepare, type Service, servesLine, verified} from './core.js'
import type {OperateOptions, ServiceResult} from './types.js'

/**
 * `service restart`: notes the server's main PID, has the supervisor
 * replace the server and its watchdog with fresh processes (a stopped
 * service is started), then waits until health answers from a PID other
 * than the old one (unless `--wait 0`).
 */
export async function restart(service: Service, options: OperateOptions): Promise<ServiceResult> {
  const startedAt = service.effects.now()
  const ready = await prepare(service, 'restart')
  if ('success' in ready) return ready
  const {driver} = service
  const previousPid = ready.jobs.server.pid
  await driver.restart(ready.roles, ready.jobs)
  const names = jobNames(driver, ready.roles)
  const done: ServiceResult = {
    success: true,
    platform: driver.platform,
    message: previousPid ? `Restarted ${names}.` : `Started ${names} (the service was not running).`,
    details: [servesLine(ready.target)],
  }
  return verified(service, 'restart', ready.target, {startedAt, waitSeconds: options.waitSeconds, ...(previousPid ? {previousPid} : {})}, done)
}
