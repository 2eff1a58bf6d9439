import {expect} from 'chai'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {createDriver, describeJobState} from '../../../../src/lib/service/drivers/launchd/driver.js'
import {launchdService as createLaunchdBackend, type LaunchdService as Backend} from '../../../helpers/launchd-service.js'
import {exitedWithConfigError, explainRefusal, Launchctl, LaunchctlError, refusalOf} from '../../../../src/lib/service/drivers/launchd/launchctl.js'
import {buildPlist, type LaunchdJob, launchdJobs, renderServerPlist, renderWatchdogPlist} from '../../../../src/lib/service/drivers/launchd/plist.js'
import type {ServiceContext} from '../../../../src/lib/service/types.js'
import {createFakeLaunchctl, type FakeLaunchctl, launchdContext} from '../../../helpers/fake-launchctl.js'

const SERVER = 'com.amplifier.distro'
const WATCHDOG = 'com.amplifier.distro.watchdog'

describe('launchctl answers', () => {
  const job: LaunchdJob = {label: SERVER, plistPath: '/Users/ada/Library/LaunchAgents/com.amplifier.distro.plist'}

  // Each known answer, as launchctl prints it, and how it is told.
  const answers: {title: string; args: string[]; code: number; stderr: string; refusal: string; message: string; next: string}[] = [
    {
      title: 'print of a job launchd does not hold (113, after a bare "Bad request.")',
      args: ['print', `gui/501/${SERVER}`],
      code: 113,
      stderr: `Bad request.\nCould not find service "${SERVER}" in domain for user gui: 501\n`,
      refusal: 'not-loaded',
      message: `launchd does not hold ${SERVER}: it is not loaded.`,
      next: 'Load it again: amp-distro service start',
    },
    {
      title: 'kickstart of a job launchd does not hold (113)',
      args: ['kickstart', '-k', `gui/501/${SERVER}`],
      code: 113,
      stderr: `Could not find service "${SERVER}" in domain for user gui: 501\n`,
      refusal: 'not-loaded',
      message: `launchd does not hold ${SERVER}: it is not loaded.`,
      next: 'Load it again: amp-distro service start',
    },
    {
      title: 'bootout of a job launchd does not hold (3, older macOS)',
      args: ['bootout', `gui/501/${SERVER}`],
      code: 3,
      stderr: 'Boot-out failed: 3: No such process\n',
      refusal: 'not-loaded',
      message: `launchd does not hold ${SERVER}: it is not loaded.`,
      next: 'Load it again: amp-distro service start',
    },
    {
      title: 'bootstrap of a job launchd holds (5)',
      args: ['bootstrap', 'gui/501', job.plistPath],
      code: 5,
      stderr: 'Bootstrap failed: 5: Input/output error\n',
      refusal: 'io-error',
      message: `launchd refused to load ${job.plistPath} (Input/output error).`,
      next: `Check the file: plutil -lint '${job.plistPath}'; write it again with amp-distro service install`,
    },
    {
      title: 'a request while launchd is still busy with the job (37)',
      args: ['bootstrap', 'gui/501', job.plistPath],
      code: 37,
      stderr: 'Bootstrap failed: 37: Operation already in progress\n',
      refusal: 'busy',
      message: `launchd is still busy with ${SERVER} (operation already in progress).`,
      next: 'Wait a few seconds, then run it again: amp-distro service restart',
    },
    {
      title: 'bootstrap of a disabled job (119)',
      args: ['bootstrap', 'gui/501', job.plistPath],
      code: 119,
      stderr: 'Bootstrap failed: 119: Service is disabled\n',
      refusal: 'disabled',
      message: `${SERVER} is disabled in launchd.`,
      next: 'Enable and start it: amp-distro service start',
    },
    {
      title: 'any other answer',
      args: ['kickstart', `gui/501/${SERVER}`],
      code: 150,
      stderr: 'Could not kickstart service: 150: Operation not permitted while System Integrity Protection is engaged\n',
      refusal: 'other',
      message: `launchctl kickstart gui/501/${SERVER} failed (exit 150).`,
      next: 'Then try again: amp-distro service restart',
    },
  ]

  for (const answer of answers) {
    it(answer.title, () => {
      const result = {code: answer.code, stdout: '', stderr: answer.stderr}
      expect(refusalOf(result)).to.equal(answer.refusal)
      const error = explainRefusal(answer.args, result, job, 'amp-distro service restart')
      expect(error).to.be.instanceOf(LaunchctlError)
      expect(error.message).to.equal(answer.message)
      expect(error.details[0]).to.equal(`launchctl ${answer.args[0]} answered: ${answer.stderr.trim().split('\n').at(-1)}`)
      expect(error.details.at(-1)).to.equal(answer.next)
    })
  }
})

describe('launchd job state in a diagnosis, and whether the health wait ends on it', () => {
  // [state, as the diagnosis tells it, a configuration error that ends the wait at once]
  const states: [Parameters<typeof describeJobState>[0], string, boolean][] = [
    [{loaded: false, state: 'not-loaded'}, 'not loaded in launchd', false],
    [{loaded: true, state: 'running', pid: 7}, 'running, PID 7', false],
    [{loaded: true, state: 'not running', lastExitCode: 1}, 'not running, last exit code 1', false],
    [{loaded: true, state: 'not running', lastExitCode: 78}, 'not running, last exit code 78 (a configuration error: amp-distro service status names the line to fix)', true],
    [{loaded: true, state: 'spawn scheduled', lastExitCode: 78}, 'spawn scheduled, last exit code 78 (a configuration error: amp-distro service status names the line to fix)', true],
    // A new process runs: the 78 was the one before it, so it may yet answer.
    [{loaded: true, state: 'running', pid: 8, lastExitCode: 78}, 'running, PID 8', false],
  ]
  for (const [state, text, permanent] of states) {
    it(`${text}${permanent ? ': ends the wait' : ''}`, () => {
      expect(describeJobState(state)).to.equal(text)
      expect(exitedWithConfigError(state)).to.equal(permanent)
    })
  }
})

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
    it(`restart loads a watchdog launchd let go of after it was asked, when its kickstart answers ${missing}`, async () => {
      world.fake.configure({missing})
      expect((await world.backend.start({waitSeconds: 0})).success).to.equal(true)
      const driver = createDriver({...world.ctx, command: 'service restart'})
      const asked = await driver.inspect()
      if (!('jobs' in asked)) throw new Error('the fake launchctl did not answer')
      await launchctl().unload(world.watchdog)
      world.fake.clearCalls()
      await driver.restart(['server', 'watchdog'], asked.jobs)
      expect(world.fake.calls().filter((call) => call[0] !== 'print')).to.deep.equal([
        ['kickstart', '-k', `gui/501/${SERVER}`],
        ['kickstart', '-k', `gui/501/${WATCHDOG}`],
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
    expect(result.message).to.equal(`launchd refused to load ${world.server.plistPath} (Input/output error).`)
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
