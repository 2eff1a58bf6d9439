import {expect} from 'chai'
import {chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createServer, type Server} from 'node:http'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'

import {EXIT_CONFIG} from '../../../src/lib/errors.js'
import {checkHealth} from '../../../src/lib/server/health.js'
import {launchdService as createLaunchdBackend, type LaunchdService as Backend} from '../../helpers/launchd-service.js'
import type {ServiceContext, ServiceResult} from '../../../src/lib/service/types.js'
import {freePort, PACKAGE, RUN_JS} from '../../helpers/cli.js'
import {createFakeLaunchctl, type FakeLaunchctl, launchdContext} from '../../helpers/fake-launchctl.js'
import {requireBuild} from '../../helpers/pack.js'
import {throughPlistutil} from '../../helpers/plistutil.js'

const SERVER = 'com.amplifier.distro'
const WATCHDOG = 'com.amplifier.distro.watchdog'

interface World {
  home: string
  port: number
  fake: FakeLaunchctl
  ctx: ServiceContext
  backend: Backend
  serverPlist: string
  watchdogPlist: string
}

/**
 * A temporary home whose plists run the built CLI (`bin/run.js`), under a
 * fake launchctl that really starts them: health answers come from the
 * process whose PID `launchctl print` reports.
 */
async function makeWorld(): Promise<World> {
  const home = mkdtempSync(join(tmpdir(), 'launchd-operations-'))
  const fake = createFakeLaunchctl()
  fake.configure({spawn: true, home})
  const ctx = launchdContext(home, `${fake.dir}:${dirname(process.execPath)}:/usr/bin:/bin`, {version: PACKAGE.version, resolveBinary: () => ({path: RUN_JS})})
  return {
    home,
    port: await freePort(),
    fake,
    ctx,
    backend: createLaunchdBackend(ctx),
    serverPlist: join(home, 'Library', 'LaunchAgents', `${SERVER}.plist`),
    watchdogPlist: join(home, 'Library', 'LaunchAgents', `${WATCHDOG}.plist`),
  }
}

function succeeded(result: ServiceResult): ServiceResult {
  expect(result.success, `${result.message}\n${result.details.join('\n')}`).to.equal(true)
  return result
}

/** The PID the server itself reports in its health answer. */
async function answeringPid(world: World): Promise<number | undefined> {
  return (await checkHealth(`http://127.0.0.1:${world.port}/api/health`, 1000)).body?.pid
}

describe('launchd start, stop and restart against a fake launchctl that runs the built CLI', function () {
  this.timeout(60_000)
  let world: World

  before(() => requireBuild())

  beforeEach(async () => {
    world = await makeWorld()
  })

  afterEach(() => {
    world.fake.cleanup()
    rmSync(world.home, {recursive: true, force: true})
  })

  const install = (waitSeconds = 30) => world.backend.install({host: '127.0.0.1', port: world.port, watchdog: true, dryRun: false, waitSeconds})

  it('the whole lifecycle, health-verified: install, status, restart, stop, start, logs, uninstall', async () => {
    const installed = succeeded(await install())
    expect(installed.serving).to.include({healthy: true, pid: world.fake.pidOf(SERVER)})
    const status = await world.backend.status()
    expect(status.server).to.deep.equal({installed: true, state: 'running', pid: world.fake.pidOf(SERVER)})
    expect(status.watchdog).to.include({installed: true, state: 'running'})
    expect(status.health).to.include({healthy: true, pid: world.fake.pidOf(SERVER), version: PACKAGE.version})
    expect(status.warnings).to.deep.equal([])
    const before = world.fake.pidOf(SERVER)!
    const restarted = succeeded(await world.backend.restart({waitSeconds: 30}))
    expect(restarted.serving).to.include({healthy: true, previousPid: before, pid: world.fake.pidOf(SERVER)})
    expect(await answeringPid(world)).to.equal(world.fake.pidOf(SERVER))
    succeeded(await world.backend.stop())
    expect(world.fake.loaded()).to.deep.equal({})
    expect((await checkHealth(`http://127.0.0.1:${world.port}/api/health`, 1000)).reason).to.equal('ECONNREFUSED')
    const stoppedStatus = await world.backend.status()
    expect(stoppedStatus.server).to.deep.equal({installed: true, state: 'stopped'})
    const started = succeeded(await world.backend.start({waitSeconds: 30}))
    expect(started.serving).to.include({healthy: true, pid: world.fake.pidOf(SERVER)})
    const lines: string[] = []
    const logs = succeeded(await world.backend.logs({lines: 200, follow: false, signal: new AbortController().signal, write: (line) => lines.push(line.text)}))
    expect(logs.message).to.match(/^\d+ lines? from /)
    expect(lines.length).to.be.above(0)
    const removed = succeeded(await world.backend.uninstall())
    expect(removed.message).to.equal('Uninstalled amplifier-distro service.')
    expect(world.fake.loaded()).to.deep.equal({})
    expect(existsSync(world.serverPlist) || existsSync(world.watchdogPlist)).to.equal(false)
    expect((await checkHealth(`http://127.0.0.1:${world.port}/api/health`, 1000)).reason).to.equal('ECONNREFUSED')
  })

  it('install returns once health answers from the PID launchd reports for the server', async () => {
    const result = succeeded(await install())
    const pid = world.fake.pidOf(SERVER)
    expect(pid).to.be.a('number')
    expect(result.serving).to.include({healthy: true, pid, url: `http://127.0.0.1:${world.port}/api/health`, version: PACKAGE.version, waitSeconds: 30})
    expect(result.details.at(-1)).to.match(new RegExp(`^Healthy: http://127\\.0\\.0\\.1:${world.port}/api/health answered from PID ${pid} after \\d+\\.\\d s\\.$`))
    expect(await answeringPid(world)).to.equal(pid)
    // The plists the fake ran parse the same with libplist.
    expect(throughPlistutil(readFileSync(world.serverPlist, 'utf8'))).to.have.property('ThrottleInterval', 30)
  })

  it('restart replaces the server with a new process each time (SIGTERM, then kickstart without -k), and the watchdog after it', async () => {
    succeeded(await install())
    let previous = world.fake.pidOf(SERVER)!
    for (let round = 0; round < 2; round++) {
      const watchdogBefore = world.fake.pidOf(WATCHDOG)
      world.fake.clearCalls()
      const result = succeeded(await world.backend.restart({waitSeconds: 30}))
      expect(result.message).to.equal(`Restarted ${SERVER} and ${WATCHDOG}.`)
      const pid = world.fake.pidOf(SERVER)!
      expect(pid).to.not.equal(previous)
      expect(result.serving).to.include({healthy: true, pid, previousPid: previous})
      expect(await answeringPid(world)).to.equal(pid)
      expect(world.fake.calls().filter((call) => call[0] === 'kickstart' || call[0] === 'kill')).to.deep.equal([
        ['kill', 'SIGTERM', `gui/501/${SERVER}`],
        ['kickstart', `gui/501/${SERVER}`],
        ['kill', 'SIGTERM', `gui/501/${WATCHDOG}`],
        ['kickstart', `gui/501/${WATCHDOG}`],
      ])
      expect(world.fake.pidOf(WATCHDOG)).to.be.a('number').and.not.equal(watchdogBefore)
      previous = pid
    }
  })

  it('stop boots out both jobs and keeps the plists; a second stop succeeds and says so; start brings both back healthy', async () => {
    succeeded(await install())
    const pids = [world.fake.pidOf(SERVER)!, world.fake.pidOf(WATCHDOG)!]
    world.fake.clearCalls()
    const stopped = succeeded(await world.backend.stop())
    expect(stopped.message).to.equal(`Stopped ${SERVER} and ${WATCHDOG}.`)
    expect(world.fake.calls().filter((call) => call[0] === 'bootout')).to.deep.equal([
      ['bootout', `gui/501/${WATCHDOG}`],
      ['bootout', `gui/501/${SERVER}`],
    ])
    expect(world.fake.loaded()).to.deep.equal({})
    expect(pids.map((pid) => world.fake.pidOf(SERVER) === pid || world.fake.pidOf(WATCHDOG) === pid)).to.deep.equal([false, false])
    expect((await checkHealth(`http://127.0.0.1:${world.port}/api/health`, 1000)).reason).to.equal('ECONNREFUSED')
    expect(existsSync(world.serverPlist) && existsSync(world.watchdogPlist)).to.equal(true)

    const again = succeeded(await world.backend.stop())
    expect(again).to.deep.include({
      message: 'amplifier-distro service is already stopped.',
      details: [`${SERVER}: not loaded in launchd`, `${WATCHDOG}: not loaded in launchd`, 'Start it: amp-distro service start'],
    })

    world.fake.clearCalls()
    const started = succeeded(await world.backend.start({waitSeconds: 30}))
    expect(started.message).to.equal(`Started ${SERVER} and ${WATCHDOG}.`)
    // A bootstrap that answers 5 while launchd still tears the job down is tried again: repeats count once.
    const changes = world.fake.calls().filter((call) => call[0] !== 'print')
    expect(changes.filter((call, i) => i === 0 || JSON.stringify(call) !== JSON.stringify(changes[i - 1]))).to.deep.equal([
      ['enable', `gui/501/${SERVER}`],
      ['bootstrap', 'gui/501', world.serverPlist],
      ['enable', `gui/501/${WATCHDOG}`],
      ['bootstrap', 'gui/501', world.watchdogPlist],
    ])
    expect(started.serving).to.include({healthy: true, pid: world.fake.pidOf(SERVER)})
    expect(await answeringPid(world)).to.equal(world.fake.pidOf(SERVER))
  })

  it('start kickstarts a job launchd holds but does not run, and leaves a running one alone', async () => {
    succeeded(await install())
    process.kill(world.fake.pidOf(SERVER)!, 'SIGKILL')
    while (world.fake.pidOf(SERVER) !== undefined) await new Promise((resolve) => setTimeout(resolve, 20))
    world.fake.clearCalls()
    const result = succeeded(await world.backend.start({waitSeconds: 30}))
    expect(world.fake.calls().filter((call) => call[0] !== 'print')).to.deep.equal([['kickstart', `gui/501/${SERVER}`]])
    expect(result.serving).to.include({healthy: true, pid: world.fake.pidOf(SERVER)})

    const again = succeeded(await world.backend.start({waitSeconds: 30}))
    expect(again.message).to.equal('amplifier-distro service was already running.')
  })

  it('restart of a stopped service starts it', async () => {
    succeeded(await install())
    succeeded(await world.backend.stop())
    const result = succeeded(await world.backend.restart({waitSeconds: 30}))
    expect(result.message).to.equal(`Started ${SERVER} and ${WATCHDOG} (the service was not running).`)
    expect(result.serving).to.include({healthy: true, pid: world.fake.pidOf(SERVER)})
    expect(result.serving?.previousPid).to.equal(undefined)
  })

  it('--wait 0 returns as soon as launchctl accepted, with no health report', async () => {
    for (const run of [() => install(0), () => world.backend.restart({waitSeconds: 0}), () => world.backend.start({waitSeconds: 0})]) {
      const result = succeeded(await run())
      expect(result).to.not.have.property('serving')
      expect(result.details.some((line) => line.startsWith('Healthy:'))).to.equal(false)
    }

    expect(world.fake.loaded()).to.have.keys(SERVER, WATCHDOG)
  })

  describe('with the port held by another program', () => {
    let holder: Server

    beforeEach(async () => {
      // Answers health with 200, but from a PID launchd never started: that must not count.
      holder = createServer((_req, res) => res.end(JSON.stringify({status: 'ok', pid: process.pid})))
      await new Promise<void>((resolve) => holder.listen(world.port, '127.0.0.1', resolve))
    })

    afterEach(async () => {
      await new Promise((resolve) => holder.close(resolve))
    })

    it('install fails after --wait seconds with the launchd state, the port, the lsof command and the server log; the plists stay loaded', async () => {
      const result = await install(3)
      expect(result.success).to.equal(false)
      expect(result.message).to.equal(`The server did not answer http://127.0.0.1:${world.port}/api/health within 3 s after install.`)
      expect(result.details[0]).to.match(new RegExp(`^Supervisor: the server is not running, last exit code 1 \\(${SERVER.replaceAll('.', String.raw`\.`)}\\)\\.$`))
      expect(result.details).to.include.members([
        `Port: 127.0.0.1:${world.port} is in use by another program, so the server cannot listen there.`,
        `  See which program: lsof -nP -iTCP:${world.port} -sTCP:LISTEN`,
        'Last lines of the server log:',
        `  [server.err.log] Error: Cannot listen on 127.0.0.1:${world.port}: address already in use (another process holds the port).`,
        'More: amp-distro service logs',
        'The service stays installed; once the cause is fixed: amp-distro service restart',
      ])
      expect(result.serving).to.include({healthy: false, waitSeconds: 3})
      expect(world.fake.loaded()).to.have.keys(SERVER, WATCHDOG)
      expect(existsSync(world.serverPlist)).to.equal(true)
    })
  })

  describe('a server that exits with a configuration error (78)', () => {
    // Each command waits up to a minute; the test's own time-out is far shorter, so a wait that does not end early fails it.
    const WAIT = 60
    const CONFIG_STATE = `Supervisor: the server is not running, last exit code ${EXIT_CONFIG} (a configuration error: amp-distro service status names the line to fix) (${SERVER}).`
    const REFUSAL = '  [server.err.log] Error: Invalid port: "99999". Use a whole number from 1 to 65535.'

    function endedAtOnce(result: ServiceResult, command: string, port = world.port): void {
      expect(result.success).to.equal(false)
      // The port the plist names, even one nothing can listen on; the cause is the exit code, never another program on a port.
      expect(result.serving!.url).to.equal(`http://127.0.0.1:${port}/api/health`)
      expect(result.details.join('\n')).not.to.include('in use by another program')
      expect(result.message).to.match(new RegExp(`within ${WAIT} s after ${command}\\.$`))
      expect(result.details[0]).to.equal(CONFIG_STATE)
      expect(result.details).to.include(REFUSAL)
      expect(result.serving).to.include({healthy: false, waitSeconds: WAIT})
      expect(result.serving!.elapsedMs).to.be.below(WAIT * 1000)
      expect(world.fake.loaded()).to.include.keys(SERVER)
    }

    /**
     * Install healthy, then hand-edit the server plist to a port serve
     * refuses (as a person might), and stop: launchd runs the definition it
     * loaded, so the edit counts from the next load.
     */
    async function installThenBreak(): Promise<void> {
      succeeded(await install())
      writeFileSync(world.serverPlist, readFileSync(world.serverPlist, 'utf8').replace(`<string>${world.port}</string>`, '<string>99999</string>'))
      succeeded(await world.backend.stop())
    }

    for (const command of ['restart', 'start'] as const) {
      it(`${command} reports the configuration error as soon as launchd shows exit code 78, not after --wait`, async function () {
        this.timeout(20_000)
        await installThenBreak()
        endedAtOnce(await world.backend[command]({waitSeconds: WAIT}), command, 99_999)
      })
    }

    it('install reports it at once too, for a binary that runs serve with a port it refuses', async function () {
      this.timeout(20_000)
      const bin = join(world.home, 'amp-distro')
      writeFileSync(bin, `#!/bin/sh\nexec '${process.execPath}' '${RUN_JS}' serve --port 99999\n`)
      chmodSync(bin, 0o755)
      world.ctx.resolveBinary = () => ({path: bin})
      endedAtOnce(await install(WAIT), 'install')
    })
  })
})
