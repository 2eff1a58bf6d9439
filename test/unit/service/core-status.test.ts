import {expect} from 'chai'

import {EXIT_CONFIG} from '../../../src/lib/errors.js'
import {install} from '../../../src/lib/service/install.js'
import {status} from '../../../src/lib/service/status.js'
import {fakeService, job, NODE_DIR} from '../../helpers/fake-driver.js'

/** A fake service with both definitions installed on port 8765 and both jobs running. */
async function installed() {
  const setup = fakeService()
  await install(setup.service, {host: '127.0.0.1', port: 8765, watchdog: true, dryRun: false, waitSeconds: 0})
  setup.driver.questions.length = 0
  return setup
}

describe('service core: status (fake driver, fake health)', () => {
  it('with nothing installed and nothing of ours running, asks the supervisor nothing: not installed, exit 0', async () => {
    const {service, driver} = fakeService()
    const result = await status(service)
    expect(driver.questions).to.deep.equal([])
    expect(result).to.deep.include({success: true, installed: false, health: null, warnings: [], message: 'amplifier-distro service is not installed.'})
    expect(result.details).to.deep.equal([
      'Platform: linux (fake units)',
      'Server:   not installed (fake-server)',
      'Watchdog: not installed (fake-watchdog)',
      'Install it: amp-distro service install',
    ])
  })

  it('a running server of the same version: state and PID, health, version next to this one, uptime, the driver’s notes; no warning', async () => {
    const {service, driver} = await installed()
    const result = await status(service)
    const pid = driver.jobs.server.pid
    expect(result).to.deep.include({success: true, installed: true, warnings: [], linger: true, message: 'amplifier-distro service is installed.'})
    expect(result.server).to.deep.equal({installed: true, state: 'active', pid})
    expect(result.health).to.deep.equal({url: 'http://127.0.0.1:8765/api/health', healthy: true, pid, version: '0.3.0', uptimeSeconds: 75})
    expect(result.details).to.deep.equal([
      'Platform: linux (fake units)',
      `Server:   active (running), PID ${pid} (fake-server)`,
      `Watchdog: active (running), PID ${driver.jobs.watchdog.pid} (fake-watchdog)`,
      'Health:   http://127.0.0.1:8765/api/health healthy',
      'Version:  0.3.0 (this amp-distro: 0.3.0)',
      'Uptime:   1 min 15 s',
      'Linger:   on',
      'Logs:     amp-distro service logs',
    ])
  })

  it('a running server of another version: a warning to restart', async () => {
    const {service, world} = await installed()
    world.version = '0.2.9'
    const result = await status(service)
    expect(result.warnings).to.deep.equal([
      'Warning: the running server is version 0.2.9, this amp-distro is 0.3.0: the service runs the new files only once restarted.\n  Run: amp-distro service restart',
    ])
  })

  it('a stopped service says stopped and how to start it; a job the supervisor does not hold is stopped too', async () => {
    const {service, driver, world} = await installed()
    driver.jobs = {server: job(), watchdog: job({held: 'not-loaded', state: 'not-loaded'})}
    world.healthy = false
    const result = await status(service)
    expect(result.server).to.deep.equal({installed: true, state: 'inactive'})
    expect(result.watchdog).to.deep.equal({installed: true, state: 'stopped'})
    expect(result.details.slice(1, 4)).to.deep.equal(['Server:   stopped (fake-server)', 'Watchdog: stopped (fake-watchdog)', 'Start it: amp-distro service start'])
  })

  it('a stopped server whose port another program holds: that warning first, naming the command that finds the program', async () => {
    const {service, driver, world} = await installed()
    driver.jobs.server = job()
    world.healthy = false
    world.portHeld = true
    const result = await status(service)
    expect(result.warnings[0]).to.equal(
      [
        'Warning: 127.0.0.1:8765 is in use by another program, so the server cannot listen there.',
        '  See which program: who-has 8765',
        '  Stop that program, or install on another port: amp-distro service install --port <port>',
      ].join('\n'),
    )
  })

  it('a running server holds its own port: no port warning', async () => {
    const {service, world} = await installed()
    world.portHeld = true
    expect((await status(service)).warnings).to.deep.equal([])
  })

  it('a job that exited with a configuration error: what it said, the line to fix, how to load the fix; the port is not blamed', async () => {
    const {service, driver, world} = await installed()
    driver.jobs.server = job({state: 'failed', summary: 'failed', gaveUp: true, configError: true, failure: 'exit-code'})
    driver.output = ['Invalid port: "99999".']
    world.healthy = false
    world.portHeld = true
    const result = await status(service)
    expect(result.warnings).to.deep.equal([
      [
        `Warning: fake-server exited with status ${EXIT_CONFIG}: its command line or configuration can never work, so the fakevisor leaves it down.`,
        '  It said: Invalid port: "99999".',
        `  The line to fix: /fake/units/server.unit, line 1: run ${process.execPath} server --host 127.0.0.1 --port 8765`,
        '  Then: amp-distro service restart',
      ].join('\n'),
    ])
  })

  it('a job the supervisor gave up for another reason: it will not start it again, where the logs are, how to start it', async () => {
    const {service, driver} = await installed()
    driver.jobs.server = job({state: 'failed', summary: 'failed', gaveUp: true, failure: 'start-limit-hit'})
    const result = await status(service)
    expect(result.details[1]).to.equal('Server:   failed (fake-server)')
    expect(result.warnings).to.deep.equal([
      [
        'Warning: fake-server has failed (start-limit-hit); fakevisor will not start it again by itself.',
        '  Logs: amp-distro service logs, and /nonexistent/home/.amplifier/server/crash.log',
        '  After fixing the cause: amp-distro service start',
      ].join('\n'),
    ])
  })

  it('a job the supervisor could not start at all: the driver’s words with what to check and how to load the fix, never a configuration error; the port is still looked at', async () => {
    const {service, driver, world} = await installed()
    driver.jobs.server = job({state: 'not running', summary: 'not running', gaveUp: true, spawnFailed: 'fakevisor could not start the program: check /fake/bin'})
    world.healthy = false
    world.portHeld = true
    const result = await status(service)
    expect(result.warnings[0].split('\n')[0]).to.equal('Warning: 127.0.0.1:8765 is in use by another program, so the server cannot listen there.')
    expect(result.warnings.slice(1)).to.deep.equal(['Warning: fake-server: fakevisor could not start the program: check /fake/bin.\n  Then: amp-distro service restart'])
  })

  it('a finding the driver has about a job (held but never started) is a warning of its own, its lines after the first indented', async () => {
    const {service, driver} = await installed()
    driver.jobs.watchdog = job({warning: ['fakevisor holds fake-watchdog but has never started it.', 'Turn it on, then run: amp-distro service restart']})
    expect((await status(service)).warnings).to.deep.equal([
      'Warning: fakevisor holds fake-watchdog but has never started it.\n  Turn it on, then run: amp-distro service restart',
    ])
  })

  it('a port that is no TCP port is reported from the definition, never asked over HTTP', async () => {
    const {service, driver, world} = await installed()
    // Hand-edited: install refuses such a port.
    driver.contents.set('/fake/units/server.unit', `run ${process.execPath} server --host 127.0.0.1 --port 99999\npath ${NODE_DIR}\n`)
    driver.jobs.server = job()
    const result = await status(service)
    expect(world.asked).to.deep.equal([])
    expect(result.health).to.deep.include({healthy: false, reason: 'port 99999 is not a TCP port'})
    expect(result.warnings[0].split('\n')[0]).to.equal(
      `Warning: /fake/units/server.unit names port 99999, which is not a TCP port (1-65535): the server exits with a configuration error (exit code ${EXIT_CONFIG}).`,
    )
  })

  it('a definition the supervisor cannot use, and a job that runs without its file', async () => {
    const {service, driver} = await installed()
    driver.jobs.server = job({unusable: 'bad-setting'})
    driver.remove('watchdog')
    driver.jobs.watchdog = job({state: 'active', running: true, pid: 99, orphaned: true})
    const result = await status(service)
    expect(result.watchdog).to.deep.equal({installed: false, state: 'not-installed'})
    expect(result.warnings).to.deep.equal([
      'Warning: fakevisor reports fake-server as bad-setting: it cannot use /fake/units/server.unit.\n  Re-run: amp-distro service install',
      'Warning: fake-watchdog is active but its fake file /fake/units/watchdog.unit is gone.\n  Run: amp-distro service uninstall',
    ])
  })

  it('with the supervisor unreachable: a failure while something is installed, still warning about the definitions themselves', async () => {
    const {service, driver} = await installed()
    driver.contents.set('/fake/units/watchdog.unit', `run /usr/local/bin/amp-distro-server watchdog --host 127.0.0.1 --port 8765\npath ${NODE_DIR}:/usr/bin\n`)
    driver.reachable = false
    const result = await status(service)
    expect(result).to.deep.include({success: false, installed: true, message: 'Cannot read the service state: the fake manager is not reachable.', health: null})
    expect(result.server).to.deep.equal({installed: true, state: 'unknown'})
    expect(result.details).to.deep.equal(['Platform: linux (fake units)', 'fake manager: connection refused', 'Start the fake manager.'])
    expect(result.warnings).to.deep.equal([
      "Warning: installed service references deprecated 'amp-distro-server'.\n  Run: amp-distro service uninstall && amp-distro service install",
      "Warning: installed service's executable /usr/local/bin/amp-distro-server no longer exists.\n  Re-run: amp-distro service install",
    ])
  })

  it('a definition that cannot be read: a warning to write it again', async () => {
    const {service, driver} = await installed()
    driver.contents.set('/fake/units/watchdog.unit', '<garbage')
    expect((await status(service)).warnings).to.deep.equal(['Warning: /fake/units/watchdog.unit is not a readable fake file (no run line).\n  Re-run: amp-distro service install'])
  })

  for (const [what, env, shown] of [
    ['WSL (WSL_DISTRO_NAME)', {WSL_DISTRO_NAME: 'Ubuntu'}, true],
    ['plain Linux', {}, false],
  ] as const) {
    it(`${shown ? 'tells' : 'does not tell'} about WSL's idle shutdown on ${what}`, async () => {
      const {service} = fakeService({env: {PATH: '/usr/bin', ...env}})
      const text = (await status(service)).details.join('\n')
      expect(text.includes('vmIdleTimeout')).to.equal(shown)
    })
  }
})
