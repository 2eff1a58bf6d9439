import {expect} from 'chai'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {launchdService as createLaunchdBackend, type LaunchdService as Backend} from '../../helpers/launchd-service.js'
import {Launchctl, LaunchctlError} from '../../../src/lib/service/drivers/launchd/launchctl.js'
import {buildPlist, type LaunchdJob, launchdJobs, renderServerPlist, renderWatchdogPlist} from '../../../src/lib/service/drivers/launchd/plist.js'
import type {ServiceContext} from '../../../src/lib/service/types.js'
import {createFakeLaunchctl, type FakeLaunchctl, launchdContext} from '../../helpers/fake-launchctl.js'

const SERVER = 'com.amplifier.distro'
const WATCHDOG = 'com.amplifier.distro.watchdog'

interface World {
  home: string
  fake: FakeLaunchctl
  ctx: ServiceContext
  backend: Backend
  server: LaunchdJob
  watchdog: LaunchdJob
}

/** A home with both plists written, under a fake launchctl that keeps state but runs nothing. */
function makeWorld(): World {
  const home = mkdtempSync(join(tmpdir(), 'launchd-answers-'))
  const fake = createFakeLaunchctl()
  const ctx = launchdContext(home, `${fake.dir}:/usr/bin:/bin`)
  const [server, watchdog] = launchdJobs(home)
  const spec = {bin: '/usr/local/bin/amp-distro', host: '127.0.0.1', port: 8400, path: '/usr/bin:/bin', home}
  mkdirSync(join(home, 'Library', 'LaunchAgents'), {recursive: true})
  writeFileSync(server.plistPath, buildPlist(renderServerPlist(spec)))
  writeFileSync(watchdog.plistPath, buildPlist(renderWatchdogPlist(spec)))
  return {home, fake, ctx, backend: createLaunchdBackend(ctx), server, watchdog}
}

describe('launchd operations when launchctl refuses', function () {
  this.timeout(30_000)
  let world: World

  beforeEach(() => {
    world = makeWorld()
  })

  afterEach(() => {
    world.fake.cleanup()
    rmSync(world.home, {recursive: true, force: true})
  })

  const launchctl = (busyMs?: number) => new Launchctl(world.ctx, {retry: 'amp-distro service start', ...(busyMs === undefined ? {} : {busyMs})})

  for (const missing of [113, 3] as const) {
    it(`restart loads a watchdog launchd no longer holds (kickstart and bootout answer ${missing}), and kills a server that ignores SIGTERM`, async () => {
      world.fake.configure({missing})
      expect((await world.backend.start({waitSeconds: 0})).success).to.equal(true)
      await launchctl().unload(world.watchdog)
      world.fake.clearCalls()
      // The fake runs nothing here, so the server's PID never goes after SIGTERM.
      const result = await createLaunchdBackend(world.ctx, {stopMs: 300}).restart({waitSeconds: 0})
      expect(result.success, result.message).to.equal(true)
      expect(world.fake.calls().filter((call) => call[0] !== 'print')).to.deep.equal([
        ['kill', 'SIGTERM', `gui/501/${SERVER}`],
        ['kickstart', '-k', `gui/501/${SERVER}`],
        ['enable', `gui/501/${WATCHDOG}`],
        ['bootstrap', 'gui/501', world.watchdog.plistPath],
      ])
      expect(world.fake.loaded()).to.have.keys(SERVER, WATCHDOG)
    })

    it(`a bootout that answers ${missing} (the job is already gone) counts as stopped; a kickstart that does is a LaunchctlError`, async () => {
      world.fake.configure({missing})
      await launchctl().unload(world.server)
      let caught: unknown
      try {
        await launchctl().kickstart(world.server, {kill: true})
      } catch (error) {
        caught = error
      }

      expect(caught).to.be.instanceOf(LaunchctlError)
      expect((caught as LaunchctlError).refusal).to.equal('not-loaded')
      expect(world.fake.calls().map((call) => call[0])).to.deep.equal(['bootout', 'print', 'kickstart'])
    })
  }

  it('a bootstrap of a job launchd already holds is an io-error LaunchctlError (5)', async () => {
    await launchctl().load(world.server)
    let caught: unknown
    try {
      await launchctl().load(world.server)
    } catch (error) {
      caught = error
    }

    expect((caught as LaunchctlError).refusal).to.equal('io-error')
    expect((caught as LaunchctlError).details[0]).to.equal('launchctl bootstrap answered: Bootstrap failed: 5: Input/output error')
  })

  it('start of a job whose bootstrap answers 5 fails with what to do, and the plists stay', async () => {
    world.fake.configure({failBootstrap: true})
    const result = await world.backend.start({waitSeconds: 0})
    expect(result.success).to.equal(false)
    expect(result.message).to.equal(`launchd refused to load ${SERVER} from ${world.server.plistPath} (Input/output error).`)
    expect(result.details).to.include('See what launchd holds: amp-distro service status')
    expect(world.fake.loaded()).to.deep.equal({})
  })

  it('start retries while launchd answers 37, then succeeds', async () => {
    world.fake.configure({busy: 2})
    const result = await world.backend.start({waitSeconds: 0})
    expect(result.success, result.message).to.equal(true)
    expect(world.fake.calls().filter((call) => call[0] === 'bootstrap')).to.have.length(4)
    expect(world.fake.loaded()).to.have.keys(SERVER, WATCHDOG)
  })

  it('a job that stays busy (37) past the bound fails with when to try again', async () => {
    world.fake.configure({busy: 1000})
    let caught: unknown
    try {
      await launchctl(300).load(world.server)
    } catch (error) {
      caught = error
    }

    expect(caught).to.be.instanceOf(LaunchctlError)
    expect((caught as LaunchctlError).message).to.equal(`launchd is still busy with ${SERVER} (operation already in progress).`)
    expect((caught as LaunchctlError).details).to.deep.equal([
      'launchctl bootstrap answered: Bootstrap failed: 37: Operation already in progress',
      'Wait a few seconds, then run it again: amp-distro service start',
    ])
  })

  it('start enables a job that was disabled with launchctl disable', async () => {
    await world.ctx.exec('launchctl', ['disable', `gui/501/${SERVER}`], {env: world.ctx.env})
    expect((await world.ctx.exec('launchctl', ['bootstrap', 'gui/501', world.server.plistPath], {env: world.ctx.env})).code).to.equal(119)
    const result = await world.backend.start({waitSeconds: 0})
    expect(result.success, result.message).to.equal(true)
    expect(world.fake.loaded()).to.have.keys(SERVER, WATCHDOG)
  })

  it('stop with nothing loaded succeeds and says the service is already stopped', async () => {
    const result = await world.backend.stop()
    expect(result).to.deep.include({success: true, message: 'amplifier-distro service is already stopped.'})
    expect(world.fake.calls().map((call) => call[0])).to.deep.equal(['print', 'print'])
  })

  describe('with nothing installed', () => {
    beforeEach(() => {
      rmSync(join(world.home, 'Library'), {recursive: true})
    })

    const operations: [string, (backend: Backend) => ReturnType<Backend['stop']>][] = [
      ['start', (backend) => backend.start({waitSeconds: 30})],
      ['stop', (backend) => backend.stop()],
      ['restart', (backend) => backend.restart({waitSeconds: 30})],
      ['logs', (backend) => backend.logs({lines: 50, follow: false, signal: new AbortController().signal, write() {}})],
    ]
    for (const [name, run] of operations) {
      it(`${name} fails, naming amp-distro service install, and runs nothing that changes launchd`, async () => {
        expect(await run(world.backend)).to.deep.equal({
          success: false,
          platform: 'macos',
          message: `amplifier-distro service is not installed, so there is nothing to ${name === 'logs' ? 'show logs of' : name}.`,
          details: ['Install it: amp-distro service install'],
        })
        expect(world.fake.calls().every((call) => call[0] === 'print')).to.equal(true)
      })
    }
  })
})
