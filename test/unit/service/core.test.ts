import {expect} from 'chai'

import {UserError} from '../../../src/lib/errors.js'
import {asResult} from '../../../src/lib/service/core.js'
import {install} from '../../../src/lib/service/install.js'
import {logs} from '../../../src/lib/service/logs.js'
import {restart} from '../../../src/lib/service/restart.js'
import {start} from '../../../src/lib/service/start.js'
import {stop} from '../../../src/lib/service/stop.js'
import type {InstallOptions, ServiceResult} from '../../../src/lib/service/types.js'
import {uninstall} from '../../../src/lib/service/uninstall.js'
import {fakeService, job} from '../../helpers/fake-driver.js'

const INSTALL: InstallOptions = {host: '127.0.0.1', port: 8765, watchdog: true, dryRun: false, waitSeconds: 30}

/** Runs an operation as runServiceCommand does: a UserError becomes a failed result. */
const run = (work: () => Promise<ServiceResult>) => asResult('linux', work)

/** A fake service with both definitions installed and both jobs as given. */
async function installed(state: 'running' | 'stopped' = 'running') {
  const setup = fakeService()
  await install(setup.service, {...INSTALL, waitSeconds: 0})
  if (state === 'stopped') setup.driver.jobs = {server: job(), watchdog: job()}
  setup.driver.calls.length = 0
  return setup
}

describe('service core: install (fake driver, fake clock)', () => {
  it('writes both definitions, has the supervisor load them, and returns once health answers from the new main PID', async () => {
    const {service, driver, world} = fakeService()
    world.time = 1000
    const result = await install(service, INSTALL)
    expect(result.success, result.message).to.equal(true)
    expect(result.message).to.equal('Installed server.unit and watchdog.unit (fake units).')
    expect(driver.calls).to.deep.equal(['write 2', 'load server,watchdog'])
    expect(result.details).to.include.members([
      'Wrote /fake/units/server.unit',
      'Wrote /fake/units/watchdog.unit',
      `Runs: ${process.execPath}`,
      'Serves: http://127.0.0.1:8765',
      'Note: the fake manager took the units.',
    ])
    expect(result.serving).to.include({healthy: true, pid: driver.jobs.server.pid, url: 'http://127.0.0.1:8765/api/health', waitSeconds: 30, version: '0.3.0'})
    expect(result.details.at(-1)).to.match(/^Healthy: http:\/\/127\.0\.0\.1:8765\/api\/health answered from PID 4000 after 0\.0 s\.$/)
  })

  it('over a running server waits for the replacement, not the old process', async () => {
    const {service, driver} = await installed()
    const old = driver.jobs.server.pid
    const result = await install(service, INSTALL)
    expect(result.serving).to.include({healthy: true, previousPid: old})
    expect(result.serving!.pid).to.not.equal(old)
  })

  it('--dry-run lists the files and the supervisor commands and changes nothing', async () => {
    const {service, driver} = fakeService()
    const result = await install(service, {...INSTALL, dryRun: true})
    expect(result).to.include({success: true, message: 'Dry run: amplifier-distro service install'})
    expect(result.details).to.include.members(['write /fake/units/server.unit (mode 0644):', 'run: fakectl load fake-server', 'run: fakectl load fake-watchdog'])
    expect(driver.calls).to.deep.equal([])
    expect(driver.questions).to.deep.equal([])
  })

  it('--dry-run --no-watchdog over an installed watchdog says it would unload and remove it, and keeps it', async () => {
    const {service, driver} = await installed()
    const result = await install(service, {...INSTALL, dryRun: true, watchdog: false})
    const text = result.details.join('\n')
    expect(text).to.contain('run: fakectl unload fake-watchdog (when loaded)\nremove: /fake/units/watchdog.unit\nrun: fakectl load fake-server')
    expect(text).to.not.contain('watchdog.unit (mode')
    expect(driver.read('watchdog')).to.not.equal(undefined)
  })

  it('--no-watchdog over an installed watchdog unloads it and removes its files before loading the server', async () => {
    const {service, driver} = await installed()
    const result = await install(service, {...INSTALL, watchdog: false, waitSeconds: 0})
    expect(driver.calls).to.deep.equal(['write 1', 'unload watchdog', 'load server'])
    expect(result.details).to.include('Removed /fake/units/watchdog.unit')
    expect(driver.read('watchdog')).to.equal(undefined)
  })

  it('with the supervisor unreachable: fails saying so, writes nothing', async () => {
    const {service, driver} = fakeService()
    driver.reachable = false
    const result = await install(service, INSTALL)
    expect(result).to.deep.equal({
      success: false,
      platform: 'linux',
      message: 'fake manager is not reachable; nothing was installed.',
      details: ['fake manager: connection refused', 'Start the fake manager.'],
    })
    expect(driver.contents.size).to.equal(0)
  })

  it('a definition that cannot be written: fails naming the folder and the reason, loads nothing', async () => {
    const {service, driver} = fakeService()
    driver.writeError = Object.assign(new Error('not a directory'), {code: 'ENOTDIR'})
    const result = await install(service, INSTALL)
    expect(result).to.include({success: false, message: 'Cannot write fake files to /fake/units (ENOTDIR); nothing was installed.'})
    expect(driver.calls).to.deep.equal([])
  })

  it('a load the supervisor refuses: the refusal, then how to remove the half-finished install', async () => {
    const {service, driver} = fakeService()
    driver.refuse = 'load'
    const result = await run(() => install(service, INSTALL))
    expect(result).to.deep.equal({
      success: false,
      platform: 'linux',
      message: 'fakectl load failed (exit 1).',
      details: ['fakectl: refused', 'Remove the half-finished install: amp-distro service uninstall'],
    })
  })

  it('an invalid spec fails before anything is asked or written', async () => {
    const {service, driver} = fakeService({resolveBinary: () => ({path: '/bin/amp\ndistro'})})
    const result = await run(() => install(service, INSTALL))
    expect(result.success).to.equal(false)
    expect(result.message).to.match(/control character/)
    expect(driver.questions).to.deep.equal([])
  })

  it('--wait 1 with a server that never comes up and another program on its port: the state, the port, its owner, the last lines', async () => {
    const {service, driver, world} = fakeService()
    driver.serverComesUp = false
    world.portHeld = true
    const result = await install(service, {...INSTALL, waitSeconds: 1})
    expect(result.success).to.equal(false)
    expect(result.message).to.equal('The server did not answer http://127.0.0.1:8765/api/health within 1 s after install.')
    expect(result.details).to.deep.equal([
      'Supervisor: the server is activating (auto-restart) (fake-server).',
      'Port: 127.0.0.1:8765 is in use by another program, so the server cannot listen there.',
      '  See which program: who-has 8765',
      '  Stop that program, or install on another port: amp-distro service install --port <port>',
      'Last lines of the server log:',
      '  listening failed',
      'More: amp-distro service logs',
      'The service stays installed; once the cause is fixed: amp-distro service restart',
    ])
    expect(result.serving).to.include({healthy: false, waitSeconds: 1})
    expect(world.time).to.be.at.least(1000)
  })

  it('a server the supervisor gives up (configuration error) ends the wait at once, and the port is not blamed', async () => {
    const {service, driver, world} = fakeService()
    driver.serverComesUp = false
    driver.serverFailsForGood = true
    world.portHeld = true
    const result = await install(service, {...INSTALL, waitSeconds: 60})
    expect(result.success).to.equal(false)
    expect(result.details[0]).to.equal('Supervisor: the server is failed (exit-code) (fake-server).')
    expect(result.details.join('\n')).to.not.contain('in use')
    expect(world.time).to.be.below(1000)
  })
})

describe('service core: a supervisor that cannot start the program, or refuses the account (fake driver, fake clock)', () => {
  it('a server the supervisor cannot start at all ends the wait at once, with its state in the driver’s words; the port is still looked at', async () => {
    const {service, driver, world} = fakeService()
    driver.serverComesUp = false
    driver.serverSpawnFails = true
    world.portHeld = true
    const result = await install(service, {...INSTALL, waitSeconds: 60})
    expect(result.success).to.equal(false)
    expect(result.details[0]).to.equal('Supervisor: the server is not running: the program could not be started (fake-server).')
    expect(result.details.join('\n')).to.contain('is in use by another program')
    expect(world.time).to.be.below(1000)
  })

  it('install, start and restart that the driver refuses for this account fail before anything is asked or written; a dry run and stop go ahead', async () => {
    const {service, driver} = await installed()
    driver.refusesCaller = true
    driver.calls.length = 0
    driver.questions.length = 0
    const refused = {success: false, platform: 'linux', message: 'Refusing to install as this account.', details: ['Run it as yourself.']}
    expect(await run(() => install(service, INSTALL))).to.deep.equal(refused)
    expect(await run(() => start(service, {waitSeconds: 1}))).to.deep.equal({...refused, message: 'Refusing to start as this account.'})
    expect(await run(() => restart(service, {waitSeconds: 1}))).to.deep.equal({...refused, message: 'Refusing to restart as this account.'})
    expect(driver.calls).to.deep.equal([])
    expect(driver.questions).to.deep.equal([])
    expect((await install(service, {...INSTALL, dryRun: true})).success).to.equal(true)
    expect((await stop(service)).success).to.equal(true)
    expect(driver.calls).to.deep.equal(['stop server,watchdog'])
  })
})

describe('service core: start, stop, restart (fake driver, fake clock)', () => {
  for (const [verb, operate] of [
    ['start', (s: ReturnType<typeof fakeService>['service']) => start(s, {waitSeconds: 1})],
    ['stop', (s: ReturnType<typeof fakeService>['service']) => stop(s)],
    ['restart', (s: ReturnType<typeof fakeService>['service']) => restart(s, {waitSeconds: 1})],
  ] as const) {
    it(`${verb} with nothing installed fails naming amp-distro service install, and asks the supervisor nothing`, async () => {
      const {service, driver} = fakeService()
      expect(await operate(service)).to.deep.equal({
        success: false,
        platform: 'linux',
        message: `amplifier-distro service is not installed, so there is nothing to ${verb}.`,
        details: ['Install it: amp-distro service install'],
      })
      expect(driver.questions).to.deep.equal([])
    })

    it(`${verb} with the supervisor unreachable fails saying so and changes nothing`, async () => {
      const {service, driver} = await installed()
      driver.reachable = false
      const result = await operate(service)
      expect(result).to.include({success: false, message: `fake manager is not reachable; cannot ${verb} the service.`})
      expect(driver.calls).to.deep.equal([])
    })
  }

  it('start of a stopped service starts both jobs and returns once health answers from the main PID', async () => {
    const {service, driver} = await installed('stopped')
    const result = await start(service, {waitSeconds: 5})
    expect(result).to.include({success: true, message: 'Started fake-server and fake-watchdog.'})
    expect(driver.calls).to.deep.equal(['start server,watchdog'])
    expect(result.serving).to.include({healthy: true, pid: driver.jobs.server.pid})
    expect(result.details).to.include.members(['Serves: http://127.0.0.1:8765', 'Stop it: amp-distro service stop'])
  })

  it('start of a running service says so, and still checks its health', async () => {
    const {service} = await installed()
    const result = await start(service, {waitSeconds: 5})
    expect(result).to.include({success: true, message: 'amplifier-distro service was already running.'})
    expect(result.serving).to.include({healthy: true})
  })

  it('start --wait 0 returns once the supervisor accepted, without asking health', async () => {
    const {service, world} = await installed('stopped')
    const result = await start(service, {waitSeconds: 0})
    expect(result.success).to.equal(true)
    expect(result.serving).to.equal(undefined)
    expect(world.asked).to.deep.equal([])
  })

  it('start without a watchdog definition starts the server alone', async () => {
    const {service, driver} = await installed('stopped')
    driver.remove('watchdog')
    expect((await start(service, {waitSeconds: 0})).message).to.equal('Started fake-server.')
    expect(driver.calls).to.deep.equal(['start server'])
  })

  it('a start the supervisor refuses is a failure that quotes it', async () => {
    const {service, driver} = await installed('stopped')
    driver.refuse = 'start'
    expect(await run(() => start(service, {waitSeconds: 0}))).to.deep.equal({
      success: false,
      platform: 'linux',
      message: 'fakectl start failed (exit 1).',
      details: ['fakectl: refused'],
    })
  })

  it('stop: stops both jobs; a second stop succeeds and says it was stopped, with each job’s state', async () => {
    const {service, driver} = await installed()
    const first = await stop(service)
    expect(first).to.include({success: true, message: 'Stopped fake-server and fake-watchdog.'})
    expect(first.details).to.deep.equal([
      'They stay stopped until amp-distro service start (or restart, or install), or the next login or boot; the fake units stay installed.',
      'Start it: amp-distro service start',
    ])
    const second = await stop(service)
    expect(second).to.deep.equal({
      success: true,
      platform: 'linux',
      message: 'amplifier-distro service is already stopped.',
      details: ['fake-server: inactive (dead)', 'fake-watchdog: inactive (dead)', 'Start it: amp-distro service start'],
    })
    expect(driver.calls).to.deep.equal(['stop server,watchdog'])
  })

  it('restart replaces the server (a new main PID) and waits for the new one', async () => {
    const {service, driver} = await installed()
    const old = driver.jobs.server.pid
    const result = await restart(service, {waitSeconds: 5})
    expect(result).to.include({success: true, message: 'Restarted fake-server and fake-watchdog.'})
    expect(result.serving).to.include({healthy: true, previousPid: old})
    expect(result.serving!.pid).to.not.equal(old)
  })

  it('restart of a stopped service starts it, and says it was not running', async () => {
    const {service} = await installed('stopped')
    const result = await restart(service, {waitSeconds: 0})
    expect(result).to.include({success: true, message: 'Started fake-server and fake-watchdog (the service was not running).'})
  })
})

describe('service core: uninstall and logs (fake driver)', () => {
  it('uninstall with nothing installed succeeds and says so, even when the supervisor does not answer', async () => {
    for (const reachable of [true, false]) {
      const {service, driver} = fakeService()
      driver.reachable = reachable
      expect(await uninstall(service)).to.deep.equal({success: true, platform: 'linux', message: 'amplifier-distro service is not installed; nothing to do.', details: []})
    }
  })

  it('uninstall unloads the watchdog first, then the server, removes the files and has the supervisor forget the jobs', async () => {
    const {service, driver} = await installed()
    const result = await uninstall(service)
    expect(result).to.include({success: true, message: 'Uninstalled amplifier-distro service.'})
    expect(driver.calls).to.deep.equal(['unload watchdog', 'unload server', 'forget watchdog,server'])
    expect(result.details).to.deep.equal([
      'Unloaded fake-watchdog',
      'Unloaded fake-server',
      'Removed /fake/units/watchdog.unit',
      'Removed /fake/units/server.unit',
      'Data in /nonexistent/home/.amplifier was left in place.',
    ])
    expect(driver.contents.size).to.equal(0)
  })

  it('uninstall with the supervisor unreachable removes nothing', async () => {
    const {service, driver} = await installed()
    driver.reachable = false
    const result = await uninstall(service)
    expect(result).to.include({success: false, message: 'fake manager is not reachable; cannot stop the service, nothing was removed.'})
    expect(driver.contents.size).to.equal(2)
  })

  it('uninstall stops a job that runs although its file is gone', async () => {
    const {service, driver} = fakeService()
    driver.jobs.server = job({state: 'active', running: true, pid: 77, orphaned: true})
    const result = await uninstall(service)
    expect(result.success).to.equal(true)
    expect(driver.calls).to.deep.equal(['unload server', 'forget server'])
  })

  it('uninstall that the supervisor refuses says to try again and keeps the files', async () => {
    const {service, driver} = await installed()
    driver.refuse = 'unload'
    const result = await run(() => uninstall(service))
    expect(result).to.include({success: false, message: 'fakectl unload failed (exit 1).'})
    expect(result.details.at(-1)).to.equal('Try again: amp-distro service uninstall')
    expect(driver.contents.size).to.equal(2)
  })

  it('logs with nothing installed fails naming install; otherwise it is the driver’s answer', async () => {
    const {service, driver} = fakeService()
    const options = {lines: 5, follow: false, signal: new AbortController().signal, write() {}}
    expect((await logs(service, options)).message).to.equal('amplifier-distro service is not installed, so there is nothing to show logs of.')
    await install(service, {...INSTALL, waitSeconds: 0})
    expect(await logs(service, options)).to.deep.equal({success: true, platform: 'linux', message: '2 lines of the fake units.', details: []})
    driver.logsAnswer = {count: 0, message: 'No lines.', details: ['Look elsewhere.'], readable: false}
    expect(await logs(service, options)).to.include({success: false, message: 'No lines.'})
  })
})

describe('service core: failures the user can act on', () => {
  it('a UserError becomes a failed result with its message and details; any other error is rethrown', async () => {
    expect(
      await asResult('macos', async () => {
        throw new UserError('Another amp-distro service command is running (PID 7).', {details: ['Wait for it to finish.']})
      }),
    ).to.deep.equal({success: false, platform: 'macos', message: 'Another amp-distro service command is running (PID 7).', details: ['Wait for it to finish.']})
    let caught: unknown
    try {
      await asResult('linux', async () => {
        throw new TypeError('a bug')
      })
    } catch (error) {
      caught = error
    }

    expect(caught).to.be.instanceOf(TypeError)
  })
})
