import {NAMES} from '../paths.js'
import {nameList, prepare, type Service} from './core.js'
import type {ServiceResult} from './types.js'

/**
 * `service stop`: stops the server and its watchdog through the
 * supervisor, gracefully. The definitions and the enablement stay, so the
 * service starts again at the next login or boot; a service that is
 * already stopped succeeds.
 */
export async function stop(service: Service): Promise<ServiceResult> {
  const ready = await prepare(service, 'stop')
  if ('success' in ready) return ready
  const {driver} = service
  const startHint = `Start it: ${NAMES.bin} service start`
  // The server's socket, where the supervisor holds one, stops with it, so no connection starts the server again.
  const socket = ready.jobs.server.socket?.held === 'loaded' ? ready.jobs.server.socket : undefined
  const names = [...ready.roles.map((role) => driver.jobName(role)), ...(socket ? [socket.name] : [])]
  if (!ready.roles.some((role) => ready.jobs[role].running) && !socket?.running) {
    const states = [...ready.roles.map((role) => `${driver.jobName(role)}: ${ready.jobs[role].detail}`), ...(socket ? [`${socket.name}: ${socket.detail}`] : [])]
    return {success: true, platform: driver.platform, message: `${NAMES.serviceName} service is already stopped.`, details: [...states, startHint]}
  }

  await driver.stop(ready.roles, ready.jobs)
  return {
    success: true,
    platform: driver.platform,
    message: `Stopped ${nameList(names)}.`,
    details: [
      `They stay stopped until ${NAMES.bin} service start (or restart, or install), or the next login or boot; the ${driver.kind.many} stay installed.`,
      startHint,
    ],
  }
}
