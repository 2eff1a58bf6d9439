import {commandText} from '../files.js'
import {NAMES, serverUrl} from '../paths.js'
import {addingDetail, failed, fileNames, hasFiles, type Service, verified} from './core.js'
import {type Driver, type PlannedCommand, type Role, ROLES} from './driver.js'
import {plannedWriteLines} from './result.js'
import {makeUnitSpec} from './spec.js'
import type {InstallOptions, PlannedFile, ServiceResult} from './types.js'
import {wslNote} from './wsl.js'

/** How a dry run shows a supervisor command. */
function runLine(command: PlannedCommand): string {
  return `run: ${commandText(command.argv)}${command.when ? ` (${command.when})` : ''}`
}

/** What an install would do, step by step, without doing any of it. */
function dryRun(driver: Driver, files: PlannedFile[], roles: readonly Role[], dropWatchdog: boolean): ServiceResult {
  const details = ['Nothing was changed. An install would:', ...files.flatMap((file) => plannedWriteLines(file))]
  if (dropWatchdog) details.push(...driver.unloadPlan('watchdog').map((command) => runLine(command)), ...driver.files('watchdog').map((file) => `remove: ${file}`))
  details.push(...driver.loadPlan(roles).map((command) => runLine(command)))
  return {success: true, platform: driver.platform, message: `Dry run: ${NAMES.serviceName} service install`, details}
}

/**
 * `service install`, for every supervisor:
 * 1. validates host and port, resolves the binary and renders the
 *    definitions (a failure here stops before anything is written or run);
 * 2. for a dry run, describes the plan and stops;
 * 3. asks the supervisor for both jobs' state (this also proves it answers;
 *    nothing is touched when it does not);
 * 4. writes the definitions atomically, mode 0644;
 * 5. with `--no-watchdog`, unloads a watchdog left by an earlier install
 *    and removes its files;
 * 6. has the supervisor load the definitions, replacing what runs now
 *    (this is how an upgrade takes effect);
 * 7. waits for the new server's health (unless `--wait 0`).
 */
export async function install(service: Service, options: InstallOptions): Promise<ServiceResult> {
  const startedAt = service.effects.now()
  const {driver, ctx} = service
  const named = makeUnitSpec(ctx, options)
  // A supervisor that listens for the server itself takes an IP address, resolved once here.
  const spec = driver.listenAddress ? {...named, address: await driver.listenAddress(named.host)} : named
  const roles = options.watchdog ? ROLES : (['server'] as const)
  const files = driver.render(spec, roles)
  const dropWatchdog = !options.watchdog && hasFiles(driver, 'watchdog')
  if (options.dryRun) return dryRun(driver, files, roles, dropWatchdog)
  driver.admit?.('install')

  // Ask before touching anything: without a supervisor, written files would only mislead status.
  const before = await driver.inspect()
  if ('unreachable' in before) return failed(driver.platform, `${driver.manager} is not reachable; nothing was installed.`, before.unreachable)

  try {
    driver.write(files)
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message
    return failed(driver.platform, `Cannot write ${driver.kind.file}s to ${driver.folder} (${reason}); nothing was installed.`, [
      'Make sure that folder is a writable directory, then run install again.',
    ])
  }

  const details = files.map((file) => `Wrote ${file.path}`)
  if (dropWatchdog) {
    await driver.unload('watchdog', before.jobs.watchdog)
    details.push(...driver.remove('watchdog').map((file) => `Removed ${file}`))
  }

  const notes = await addingDetail(`Remove the half-finished install: ${NAMES.bin} service uninstall`, () => driver.load(roles, before.jobs))
  const done: ServiceResult = {
    success: true,
    platform: driver.platform,
    message: `Installed ${fileNames(files)} (${files.length > 1 ? driver.kind.many : driver.kind.one}).`,
    details: [...details, `Runs: ${spec.bin}`, `Serves: ${serverUrl(spec.host, spec.port)}`, `Status: ${NAMES.bin} service status`, ...notes, ...wslNote(ctx)],
  }
  const previousPid = before.jobs.server.pid
  return verified(service, 'install', spec, {startedAt, waitSeconds: options.waitSeconds, ...(previousPid ? {previousPid} : {})}, done)
}
