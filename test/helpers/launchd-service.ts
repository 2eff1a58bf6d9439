import {asResult, realEffects, type Service} from '../../src/lib/service/core.js'
import {createDriver, type LaunchdDriverOptions} from '../../src/lib/service/drivers/launchd/driver.js'
import {install} from '../../src/lib/service/install.js'
import {logs} from '../../src/lib/service/logs.js'
import {restart} from '../../src/lib/service/restart.js'
import {start} from '../../src/lib/service/start.js'
import {status} from '../../src/lib/service/status.js'
import {stop} from '../../src/lib/service/stop.js'
import type {InstallOptions, LogsOptions, OperateOptions, ServiceContext, ServiceResult, StatusResult} from '../../src/lib/service/types.js'
import {uninstall} from '../../src/lib/service/uninstall.js'

/** The service commands over the launchd driver, as runServiceCommand runs them (a UserError becomes a failed result), without the lock and the flag parsing. */
export interface LaunchdService {
  install(options: InstallOptions): Promise<ServiceResult>
  uninstall(): Promise<ServiceResult>
  status(): Promise<StatusResult>
  start(options: OperateOptions): Promise<ServiceResult>
  stop(): Promise<ServiceResult>
  restart(options: OperateOptions): Promise<ServiceResult>
  logs(options: LogsOptions): Promise<ServiceResult>
}

/** The service core over the launchd driver for `ctx` (a fake launchctl on its PATH), with the real clock and network; `options` bound its waits on launchd. */
export function launchdService(ctx: ServiceContext, options: LaunchdDriverOptions = {}): LaunchdService {
  const service = (command: string): Service => ({driver: createDriver({...ctx, command: `service ${command}`}, options), ctx, effects: realEffects})
  const guarded = (work: () => Promise<ServiceResult>) => asResult('macos', work)
  return {
    install: (options) => guarded(() => install(service('install'), options)),
    uninstall: () => guarded(() => uninstall(service('uninstall'))),
    status: () => status(service('status')),
    start: (options) => guarded(() => start(service('start'), options)),
    stop: () => guarded(() => stop(service('stop'))),
    restart: (options) => guarded(() => restart(service('restart'), options)),
    logs: (options) => guarded(() => logs(service('logs'), options)),
  }
}
