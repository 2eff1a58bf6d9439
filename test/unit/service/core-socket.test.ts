import {expect} from 'chai'

import {UserError} from '../../../src/lib/errors.js'
import {waitUntilServing} from '../../../src/lib/service/health-wait.js'
import {install} from '../../../src/lib/service/install.js'
import {start} from '../../../src/lib/service/start.js'
import {status} from '../../../src/lib/service/status.js'
import {stop} from '../../../src/lib/service/stop.js'
import {fakeService, job, socket} from '../../helpers/fake-driver.js'

/** A fake service installed on port 8765 whose supervisor holds the server's socket (as systemd does), both jobs running. */
async function installed() {
  const setup = fakeService()
  await install(setup.service, {host: '127.0.0.1', port: 8765, watchdog: true, dryRun: false, waitSeconds: 0})
  setup.driver.jobs.server.socket = socket()
  setup.driver.portOwner = (port) => `node (PID 31${port})`
  setup.driver.startLimitRecovery = 'fakectl reset fake-server fake-socket, then fakectl start fake-server'
  setup.driver.calls.length = 0
  return setup
}

/** The server down and not answering. */
function serverDown(setup: Awaited<ReturnType<typeof installed>>, listener: ReturnType<typeof socket>) {
  setup.driver.jobs.server = {...job(), socket: listener}
  setup.world.healthy = false
}

describe('service core: the supervisor’s socket for the server (fake driver)', () => {
  describe('status', () => {
    it('shows the socket beside the jobs and reports it in --json; a listening socket of our own is no port conflict', async () => {
      const setup = await installed()
      setup.world.portHeld = true
      serverDown(setup, socket())
      const result = await status(setup.service)
      expect(result.details.slice(1, 4)).to.deep.equal(['Server:   stopped (fake-server)', `Watchdog: active (running), PID ${setup.driver.jobs.watchdog.pid} (fake-watchdog)`, 'Socket:   active (listening) (fake-socket)'])
      expect(result.socket).to.deep.equal({installed: true, state: 'active'})
      expect(result.warnings).to.deep.equal([])
    })

    it('a driver without a socket (launchd) shows no socket line and reports none', async () => {
      const {service} = fakeService()
      await install(service, {host: '127.0.0.1', port: 8765, watchdog: true, dryRun: false, waitSeconds: 0})
      const result = await status(service)
      expect(result.details.some((line) => line.startsWith('Socket:'))).to.equal(false)
      expect(result).not.to.have.property('socket')
    })

    it('an install from before the socket: not installed, and a warning to run install again with its host and port', async () => {
      const setup = await installed()
      setup.driver.jobs.server.socket = socket({installed: false, held: 'not-loaded', state: 'inactive', detail: 'inactive (dead)', running: false})
      const result = await status(setup.service)
      expect(result.details).to.include('Socket:   not installed (fake-socket)')
      expect(result.socket).to.deep.equal({installed: false, state: 'not-installed'})
      expect(result.warnings).to.deep.equal([
        'Warning: installed without fake-socket, so connections are refused while the server restarts.\n  For zero-downtime restarts, run install again: amp-distro service install --host 127.0.0.1 --port 8765',
      ])
    })

    it('a socket that failed because the port was taken: the port, its owner, how to find it and how to recover; no second port warning', async () => {
      const setup = await installed()
      setup.world.portHeld = true
      serverDown(setup, socket({state: 'failed', detail: 'failed (resources)', running: false, failure: 'resources', portTaken: true}))
      const result = await status(setup.service)
      expect(result.socket).to.deep.equal({installed: true, state: 'failed'})
      expect(result.warnings).to.deep.equal([
        [
          'Warning: 127.0.0.1:8765 is in use by node (PID 318765), so the server cannot listen there. (fake-socket failed: resources)',
          '  See which program: who-has 8765',
          '  Stop that program, or install on another port: amp-distro service install --port <port>',
          '  Then: amp-distro service start',
        ].join('\n'),
      ])
    })

    it('a socket closed by the server’s start limit: why the port is closed, and both ways to recover', async () => {
      const setup = await installed()
      serverDown(setup, socket({state: 'failed', detail: 'failed (limit)', running: false, failure: 'limit', startLimit: true}))
      const [warning] = (await status(setup.service)).warnings
      expect(warning.split('\n')).to.deep.equal([
        'Warning: fake-socket failed (limit): the server crashed too often, so fakevisor closed the port.',
        `  Logs: amp-distro service logs, and /nonexistent/home/.amplifier/server/crash.log`,
        '  Recover: amp-distro service start (it forgets the failed state first),',
        '  or: fakectl reset fake-server fake-socket, then fakectl start fake-server',
      ])
    })

    it('a server at its start limit says how to recover instead of only “after fixing the cause”', async () => {
      const setup = await installed()
      setup.driver.startLimitRecovery = undefined
      setup.driver.jobs.server = job({state: 'failed', detail: 'failed (start-limit-hit)', gaveUp: true, failure: 'start-limit-hit', startLimit: true})
      setup.world.healthy = false
      const [warning] = (await status(setup.service)).warnings
      expect(warning.split('\n').slice(-1)).to.deep.equal(['  Recover: amp-distro service start (it forgets the failed state first)'])
    })

    it('a socket file the supervisor cannot use: a warning to write it again', async () => {
      const setup = await installed()
      setup.driver.jobs.server.socket = socket({held: 'loaded', state: 'inactive', running: false, unusable: 'bad-setting'})
      expect((await status(setup.service)).warnings).to.deep.equal([
        'Warning: fakevisor reports fake-socket as bad-setting: it cannot use /fake/units/server.socket.\n  Re-run: amp-distro service install',
      ])
    })
  })

  describe('stop, start and the diagnosis', () => {
    it('stop names the socket among what it stopped; once stopped, the socket’s state is listed', async () => {
      const setup = await installed()
      expect((await stop(setup.service)).message).to.equal('Stopped fake-server, fake-watchdog and fake-socket.')
      const again = await stop(setup.service)
      expect(again.message).to.equal('amplifier-distro service is already stopped.')
      expect(again.details).to.include('fake-socket: inactive (dead)')
    })

    it('a socket that still listens while both jobs are down is something to stop', async () => {
      const setup = await installed()
      setup.driver.jobs.watchdog = job()
      serverDown(setup, socket())
      expect((await stop(setup.service)).message).to.equal('Stopped fake-server, fake-watchdog and fake-socket.')
      expect(setup.driver.calls).to.deep.equal(['stop server,watchdog'])
    })

    it('a server that does not come up behind its own listening socket: no port conflict is named, though the port accepts', async () => {
      const setup = await installed()
      setup.driver.serverComesUp = false
      setup.driver.jobs = {server: {...job(), socket: socket()}, watchdog: job()}
      setup.world.portHeld = true
      const result = await start(setup.service, {waitSeconds: 2})
      expect(result.success).to.equal(false)
      expect(result.details.join('\n')).not.to.include('in use by')
    })

    it('a failed socket is named in the supervisor state; a port held by another program is named with its owner', async () => {
      const setup = await installed()
      setup.driver.serverComesUp = false
      setup.driver.jobs = {server: {...job(), socket: socket({state: 'failed', detail: 'failed (resources)', running: false, failure: 'resources', portTaken: true})}, watchdog: job()}
      setup.world.portHeld = true
      const result = await start(setup.service, {waitSeconds: 2})
      expect(result.details[0]).to.equal('Supervisor: the server is activating (auto-restart) (fake-server); its socket is failed (resources) (fake-socket).')
      expect(result.details[1]).to.equal('Port: 127.0.0.1:8765 is in use by node (PID 318765), so the server cannot listen there.')
    })
  })

  describe('install', () => {
    it('a supervisor that listens itself gets the host resolved once, as an address in the spec it renders', async () => {
      const {service, driver} = fakeService()
      const asked: string[] = []
      driver.listenAddress = async (host) => {
        asked.push(host)
        return '127.0.0.2'
      }

      await install(service, {host: 'localhost', port: 8765, watchdog: true, dryRun: true, waitSeconds: 0})
      expect(asked).to.deep.equal(['localhost'])
      expect(driver.rendered).to.include({host: 'localhost', address: '127.0.0.2'})
    })

    it('a host that does not resolve is refused before anything is written', async () => {
      const {service, driver} = fakeService()
      driver.listenAddress = async (host) => {
        throw new UserError(`Cannot resolve the host "${host}" (ENOTFOUND).`)
      }

      let refused: unknown
      await install(service, {host: 'nowhere.invalid', port: 8765, watchdog: true, dryRun: false, waitSeconds: 0}).catch((error: unknown) => {
        refused = error
      })
      expect(refused).to.be.instanceOf(UserError)
      expect(driver.calls).to.deep.equal([])
    })
  })
})

describe('the wait for a new server: each check may wait up to 5 s for its answer, never much past the deadline', () => {
  it('asks with min(5 s, max(1 s, time left))', async () => {
    let time = 0
    const timeouts: number[] = []
    const report = await waitUntilServing(
      {host: '127.0.0.1', port: 8765},
      {startedAt: 0, waitSeconds: 7},
      {
        mainPid: async () => 42,
        async check(_url, timeoutMs) {
          timeouts.push(timeoutMs)
          time += timeoutMs
          return {healthy: false, reason: 'timed out'}
        },
        now: () => time,
        sleep: async (ms) => {
          time += ms
        },
      },
    )
    expect(report.healthy).to.equal(false)
    expect(timeouts).to.deep.equal([5000, 1900])
  })
})
