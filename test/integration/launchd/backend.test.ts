import {expect} from 'chai'
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {createServer, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import plist, {type PlistObject} from 'plist'

import {UserError} from '../../../src/lib/errors.js'
import {freePort} from '../../helpers/cli.js'
import {launchdService as createLaunchdBackend, type LaunchdService as Backend} from '../../helpers/launchd-service.js'
import {createDriver} from '../../../src/lib/service/drivers/launchd/driver.js'
import {buildPlist, renderServerPlist, renderWatchdogPlist} from '../../../src/lib/service/drivers/launchd/plist.js'
import type {ServiceContext} from '../../../src/lib/service/types.js'
import {createFakeLaunchctl, type FakeLaunchctl, launchdContext} from '../../helpers/fake-launchctl.js'
import {throughPlistutil} from '../../helpers/plistutil.js'

const SERVER = 'com.amplifier.distro'
const WATCHDOG = 'com.amplifier.distro.watchdog'

interface World {
  root: string
  home: string
  bin: string
  nodeDir: string
  unitPath: string
  serverPlist: string
  watchdogPlist: string
  fake: FakeLaunchctl
  ctx: ServiceContext
}

function makeWorld(homeName = 'home'): World {
  const root = mkdtempSync(join(tmpdir(), 'launchd-backend-'))
  const home = join(root, homeName)
  mkdirSync(home, {recursive: true})
  const nodeDir = join(root, 'node-v20', 'bin')
  mkdirSync(nodeDir, {recursive: true})
  symlinkSync(process.execPath, join(nodeDir, 'node'))
  const bin = join(root, 'prefix', 'bin', 'amp-distro')
  mkdirSync(join(root, 'prefix', 'bin'), {recursive: true})
  writeFileSync(bin, '#!/bin/sh\n')
  chmodSync(bin, 0o755)
  const fake = createFakeLaunchctl()
  const shellPath = `${fake.dir}:/usr/bin:/bin`
  return {
    root,
    home,
    bin,
    nodeDir,
    unitPath: `${nodeDir}:${shellPath}`,
    serverPlist: join(home, 'Library', 'LaunchAgents', `${SERVER}.plist`),
    watchdogPlist: join(home, 'Library', 'LaunchAgents', `${WATCHDOG}.plist`),
    fake,
    ctx: launchdContext(home, shellPath, {nodePath: join(nodeDir, 'node'), resolveBinary: () => ({path: bin})}),
  }
}

const options = {host: '127.0.0.1', port: 8400, watchdog: true, dryRun: false, waitSeconds: 0}

function readPlist(file: string): PlistObject {
  return plist.parse(readFileSync(file, 'utf8')) as PlistObject
}

/** Lists every file under a folder, relative to it. */
function filesUnder(dir: string): string[] {
  return existsSync(dir) ? (readdirSync(dir, {recursive: true, withFileTypes: true}) as {isFile(): boolean; parentPath: string; name: string}[]).filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1)).sort() : []
}

/** A stand-in server on a free port that answers `/api/health` with `status` and `fields`. */
async function healthServer(status = 200, fields: Record<string, unknown> = {}): Promise<{server: Server; port: number}> {
  const server = createServer((req, res) => {
    res.writeHead(req.url === '/api/health' ? status : 404, {'content-type': 'application/json'})
    res.end(JSON.stringify({status: 'ok', ...fields}))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {server, port: (server.address() as AddressInfo).port}
}

describe('launchd backend against a fake launchctl', function () {
  this.timeout(30_000)
  let world: World

  beforeEach(() => {
    world = makeWorld()
  })

  afterEach(() => {
    world.fake.cleanup()
    rmSync(world.root, {recursive: true, force: true})
  })

  describe('install', () => {
    // Each case: what was there before, the install, and the launchctl calls it makes, in order.
    const sequences: {
      title: string
      arrange?: (backend: Backend) => Promise<void>
      install?: Partial<typeof options>
      calls: (world: World) => string[][]
      loaded: 'both' | 'server'
    }[] = [
      {
        title: 'a first install asks which jobs are loaded, then enables and bootstraps the server, then the watchdog',
        calls: (w) => [
          ['print', `gui/501/${WATCHDOG}`],
          ['print', `gui/501/${SERVER}`],
          ['enable', `gui/501/${SERVER}`],
          ['bootstrap', 'gui/501', w.serverPlist],
          ['enable', `gui/501/${WATCHDOG}`],
          ['bootstrap', 'gui/501', w.watchdogPlist],
        ],
        loaded: 'both',
      },
      {
        title: 'a re-install boots out the loaded jobs, watchdog first, before bootstrapping them again',
        arrange: async (backend) => void (await backend.install(options)),
        install: {port: 8500},
        calls: (w) => [
          ['print', `gui/501/${WATCHDOG}`],
          ['print', `gui/501/${SERVER}`],
          ['bootout', `gui/501/${WATCHDOG}`],
          ['print', `gui/501/${WATCHDOG}`],
          ['bootout', `gui/501/${SERVER}`],
          ['print', `gui/501/${SERVER}`],
          ['enable', `gui/501/${SERVER}`],
          ['bootstrap', 'gui/501', w.serverPlist],
          ['enable', `gui/501/${WATCHDOG}`],
          ['bootstrap', 'gui/501', w.watchdogPlist],
        ],
        loaded: 'both',
      },
      {
        title: 'a re-install waits for launchd to let go of each booted-out job before bootstrapping it again',
        async arrange(backend) {
          await backend.install(options)
          world.fake.configure({drain: 3})
        },
        calls: (w) => [
          ['print', `gui/501/${WATCHDOG}`],
          ['print', `gui/501/${SERVER}`],
          ['bootout', `gui/501/${WATCHDOG}`],
          ['print', `gui/501/${WATCHDOG}`],
          ['print', `gui/501/${WATCHDOG}`],
          ['print', `gui/501/${WATCHDOG}`],
          ['bootout', `gui/501/${SERVER}`],
          ['print', `gui/501/${SERVER}`],
          ['print', `gui/501/${SERVER}`],
          ['print', `gui/501/${SERVER}`],
          ['enable', `gui/501/${SERVER}`],
          ['bootstrap', 'gui/501', w.serverPlist],
          ['enable', `gui/501/${WATCHDOG}`],
          ['bootstrap', 'gui/501', w.watchdogPlist],
        ],
        loaded: 'both',
      },
      {
        title: 'a launchctl without bootstrap (usage error, exit 64) gets load -w',
        arrange: async () => world.fake.configure({unsupported: ['bootstrap']}),
        calls: (w) => [
          ['print', `gui/501/${WATCHDOG}`],
          ['print', `gui/501/${SERVER}`],
          ['enable', `gui/501/${SERVER}`],
          ['bootstrap', 'gui/501', w.serverPlist],
          ['load', '-w', w.serverPlist],
          ['load', '-w', w.watchdogPlist],
        ],
        loaded: 'both',
      },
      {
        title: 'a launchctl that knows none of the current subcommands gets list and load -w',
        arrange: async () => world.fake.configure({unsupported: ['print', 'bootstrap', 'bootout', 'enable'], unsupportedStyle: 'unknown'}),
        calls: (w) => [
          ['print', `gui/501/${WATCHDOG}`],
          ['list', WATCHDOG],
          ['list', SERVER],
          ['load', '-w', w.serverPlist],
          ['load', '-w', w.watchdogPlist],
        ],
        loaded: 'both',
      },
      {
        title: 'a re-install on such a launchctl unloads with unload, then loads with load -w',
        async arrange(backend) {
          world.fake.configure({unsupported: ['print', 'bootstrap', 'bootout', 'enable'], unsupportedStyle: 'unknown'})
          await backend.install(options)
        },
        calls: (w) => [
          ['print', `gui/501/${WATCHDOG}`],
          ['list', WATCHDOG],
          ['list', SERVER],
          ['unload', w.watchdogPlist],
          ['list', WATCHDOG],
          ['unload', w.serverPlist],
          ['list', SERVER],
          ['load', '-w', w.serverPlist],
          ['load', '-w', w.watchdogPlist],
        ],
        loaded: 'both',
      },
      {
        title: '--no-watchdog over an install with one boots both out and bootstraps the server alone',
        arrange: async (backend) => void (await backend.install(options)),
        install: {watchdog: false},
        calls: (w) => [
          ['print', `gui/501/${WATCHDOG}`],
          ['print', `gui/501/${SERVER}`],
          ['bootout', `gui/501/${WATCHDOG}`],
          ['print', `gui/501/${WATCHDOG}`],
          ['bootout', `gui/501/${SERVER}`],
          ['print', `gui/501/${SERVER}`],
          ['enable', `gui/501/${SERVER}`],
          ['bootstrap', 'gui/501', w.serverPlist],
        ],
        loaded: 'server',
      },
    ]

    for (const sequence of sequences) {
      it(sequence.title, async () => {
        const backend = createLaunchdBackend(world.ctx)
        await sequence.arrange?.(backend)
        world.fake.clearCalls()
        const result = await backend.install({...options, ...sequence.install})
        expect(result.success, result.message).to.equal(true)
        expect(world.fake.calls()).to.deep.equal(sequence.calls(world))
        const expected = sequence.loaded === 'both' ? {[SERVER]: world.serverPlist, [WATCHDOG]: world.watchdogPlist} : {[SERVER]: world.serverPlist}
        expect(world.fake.loaded()).to.deep.equal(expected)
        expect(filesUnder(join(world.home, 'Library', 'LaunchAgents'))).to.deep.equal(Object.keys(expected).map((label) => `${label}.plist`))
      })
    }

    it('writes both plists with mode 0644, the log folder, and what each job runs', async () => {
      const result = await createLaunchdBackend(world.ctx).install(options)
      expect(result.success, result.message).to.equal(true)
      expect(result.platform).to.equal('macos')
      for (const file of [world.serverPlist, world.watchdogPlist]) {
        expect(statSync(file).mode & 0o777).to.equal(0o644)
      }

      expect(filesUnder(join(world.home, 'Library'))).to.deep.equal([`LaunchAgents/${SERVER}.plist`, `LaunchAgents/${WATCHDOG}.plist`])
      expect(statSync(join(world.home, '.amplifier', 'server')).isDirectory()).to.equal(true)
      const server = readPlist(world.serverPlist)
      expect(server.ProgramArguments).to.deep.equal([world.bin, 'serve', '--host', '127.0.0.1', '--port', '8400'])
      expect(server.EnvironmentVariables).to.deep.equal({PATH: world.unitPath, LAUNCHD_JOB_NAME: SERVER})
      expect(throughPlistutil(readFileSync(world.serverPlist, 'utf8'))).to.deep.equal(server)
      const watchdog = readPlist(world.watchdogPlist)
      expect(watchdog.ProgramArguments).to.deep.equal([world.bin, 'watchdog', '--host', '127.0.0.1', '--port', '8400'])
      expect(watchdog.EnvironmentVariables).to.deep.equal({PATH: world.unitPath, LAUNCHD_JOB_NAME: WATCHDOG})
      expect(watchdog.KeepAlive).to.equal(true)
      expect(throughPlistutil(readFileSync(world.watchdogPlist, 'utf8'))).to.deep.equal(watchdog)
    })

    it('writes 0644 even under a restrictive umask', async () => {
      const previous = process.umask(0o077)
      try {
        expect((await createLaunchdBackend(world.ctx).install(options)).success).to.equal(true)
      } finally {
        process.umask(previous)
      }

      expect(statSync(world.serverPlist).mode & 0o777).to.equal(0o644)
    })

    it('writes the new port on a re-install, and says what it removed with --no-watchdog', async () => {
      const backend = createLaunchdBackend(world.ctx)
      await backend.install(options)
      expect((await backend.install({...options, port: 8500})).success).to.equal(true)
      expect(readPlist(world.serverPlist).ProgramArguments).to.deep.equal([world.bin, 'serve', '--host', '127.0.0.1', '--port', '8500'])
      const result = await backend.install({...options, watchdog: false})
      expect(result.details).to.include(`Removed ${world.watchdogPlist}`)
      expect(result.message).to.equal('Installed com.amplifier.distro.plist (launchd user agent).')
    })

    it('fails, naming the job, when launchd still holds it unloadMs after bootout', async () => {
      const backend = createLaunchdBackend(world.ctx, {unloadMs: 1000})
      expect((await backend.install(options)).success).to.equal(true)
      world.fake.configure({drain: 1_000_000})
      const again = await backend.install(options)
      expect(again.success).to.equal(false)
      expect(again.message).to.equal(`launchd still holds ${WATCHDOG} 1 s after it was told to stop it.`)
      expect(again.details).to.deep.equal([
        'Wait a few seconds, then run it again: amp-distro service install',
        'Remove the half-finished install: amp-distro service uninstall',
      ])
      expect(world.fake.calls().filter((call) => call[0] === 'bootstrap')).to.have.length(2)
    })

    // Each case: what is wrong (in the options or the context) and the message install answers with.
    const refusals: {title: string; options?: Partial<typeof options>; ctx?: Partial<ServiceContext>; message: RegExp}[] = [
      {title: 'a host with a newline', options: {host: '127.0.0.1\nExecStartPre=/bin/sh'}, message: /^Invalid host: .*control character/},
      {title: 'a port out of range', options: {port: 70_000}, message: /^Invalid port/},
      {title: 'a Node path with a newline', ctx: {nodePath: '/opt/node\n/bin/node'}, message: /^Invalid PATH/},
      {
        title: 'a binary that cannot be found',
        ctx: {
          resolveBinary() {
            throw new UserError('amp-distro binary not found.', {details: ['Ensure the directory holding amp-distro is on PATH, or reinstall: npm install -g amp-distro']})
          },
        },
        message: /^amp-distro binary not found\.$/,
      },
    ]
    for (const refusal of refusals) {
      it(`refuses ${refusal.title} before writing or running anything`, async () => {
        const result = await createLaunchdBackend({...world.ctx, ...refusal.ctx}).install({...options, ...refusal.options})
        expect(result).to.include({success: false, platform: 'macos'})
        expect(result.message).to.match(refusal.message)
        expect(filesUnder(world.home)).to.deep.equal([])
        expect(world.fake.calls()).to.deep.equal([])
      })
    }

    it('fails cleanly, with nothing written, when launchctl cannot be run', async () => {
      const result = await createLaunchdBackend({...world.ctx, env: {PATH: '/nonexistent-bin'}}).install(options)
      expect(result.success).to.equal(false)
      expect(result.message).to.equal('launchd user domain is not reachable; nothing was installed.')
      expect(result.details[0]).to.match(/^launchctl could not be run/)
      expect(filesUnder(world.home)).to.deep.equal([])
    })

    it('fails without loading anything when the plists cannot be written', async () => {
      mkdirSync(join(world.home, 'Library'))
      writeFileSync(join(world.home, 'Library', 'LaunchAgents'), 'not a folder\n')
      const result = await createLaunchdBackend(world.ctx).install(options)
      expect(result.success).to.equal(false)
      expect(result.message).to.match(/^Cannot write plists to .*LaunchAgents \((ENOTDIR|EEXIST)\); nothing was installed\.$/)
      expect(world.fake.calls().map((call) => call[0])).to.deep.equal(['print', 'print'])
      expect(filesUnder(join(world.home, 'Library'))).to.deep.equal(['LaunchAgents'])
    })

    it('reports a bootstrap failure (5) with launchctl’s own words and what to do', async () => {
      world.fake.configure({failBootstrap: true})
      const result = await createLaunchdBackend(world.ctx).install(options)
      expect(result.success).to.equal(false)
      expect(result.message).to.equal(`launchd refused to load ${SERVER} from ${world.serverPlist} (Input/output error).`)
      expect(result.details).to.deep.equal([
        'launchctl bootstrap answered: Bootstrap failed: 5: Input/output error',
        'launchd answers so for a job it already holds, one it is still unloading, and a plist it cannot use.',
        'See what launchd holds: amp-distro service status',
        `Check the file: plutil -lint '${world.serverPlist}'; write it again with amp-distro service install`,
        'Remove the half-finished install: amp-distro service uninstall',
      ])
    })

    it('--dry-run describes every file and command and changes nothing', async () => {
      const result = await createLaunchdBackend(world.ctx).install({...options, dryRun: true})
      expect(result.success).to.equal(true)
      expect(world.fake.calls()).to.deep.equal([])
      expect(filesUnder(world.home)).to.deep.equal([])
      const spec = {bin: world.bin, host: '127.0.0.1', port: 8400, path: world.unitPath, home: world.home}
      const indented = (text: string) => text.trimEnd().split('\n').map((line) => `  ${line}`)
      expect(result.message).to.equal('Dry run: amplifier-distro service install')
      expect(result.details).to.deep.equal([
        'Nothing was changed. An install would:',
        `write ${world.serverPlist} (mode 0644):`,
        ...indented(buildPlist(renderServerPlist(spec))),
        `write ${world.watchdogPlist} (mode 0644):`,
        ...indented(buildPlist(renderWatchdogPlist(spec))),
        `run: launchctl bootout gui/501/${WATCHDOG} (when loaded)`,
        `run: launchctl bootout gui/501/${SERVER} (when loaded)`,
        `run: launchctl enable gui/501/${SERVER}`,
        `run: launchctl bootstrap gui/501 ${world.serverPlist}`,
        `run: launchctl enable gui/501/${WATCHDOG}`,
        `run: launchctl bootstrap gui/501 ${world.watchdogPlist}`,
      ])
    })

    it('--dry-run --no-watchdog says it would remove a watchdog left from an earlier install', async () => {
      const backend = createLaunchdBackend(world.ctx)
      await backend.install(options)
      world.fake.clearCalls()
      const before = readFileSync(world.watchdogPlist, 'utf8')
      const result = await backend.install({...options, watchdog: false, dryRun: true})
      const text = result.details.join('\n')
      expect(text).to.contain(`\nrun: launchctl bootout gui/501/${WATCHDOG} (when loaded)\nremove: ${world.watchdogPlist}\nrun: launchctl bootout gui/501/${SERVER} (when loaded)`)
      expect(result.details.filter((line) => line.startsWith('write '))).to.deep.equal([`write ${world.serverPlist} (mode 0644):`])
      expect(readFileSync(world.watchdogPlist, 'utf8')).to.equal(before)
      expect(world.fake.calls()).to.deep.equal([])
    })

    it('quotes paths with spaces in the commands a dry run shows', async () => {
      const odd = makeWorld('Ada Lovelace')
      try {
        const result = await createLaunchdBackend(odd.ctx).install({...options, dryRun: true})
        expect(result.details).to.include(`run: launchctl bootstrap gui/501 '${odd.serverPlist}'`)
      } finally {
        odd.fake.cleanup()
        rmSync(odd.root, {recursive: true, force: true})
      }
    })

    it('plans the same files and commands that install writes and runs', async () => {
      const driver = createDriver(world.ctx)
      const spec = {bin: world.bin, host: '127.0.0.1', port: 8400, path: world.unitPath, home: world.home}
      const files = driver.render(spec, ['server', 'watchdog'])
      expect(files.map((file) => file.path)).to.deep.equal([world.serverPlist, world.watchdogPlist])
      await createLaunchdBackend(world.ctx).install(options)
      for (const file of files) expect(readFileSync(file.path, 'utf8')).to.equal(file.content)
      const ran = world.fake.calls().filter((call) => call[0] !== 'print')
      const planned = driver.loadPlan(['server', 'watchdog']).filter((command) => command.when === undefined)
      expect(planned.map((command) => command.argv)).to.deep.equal(ran.map((call) => ['launchctl', ...call]))
      expect(driver.render(spec, ['server']).map((file) => file.path)).to.deep.equal([world.serverPlist])
    })
  })

  describe('a HOME whose path holds spaces, %, $, & and <', () => {
    it('installs plists that launchctl is handed verbatim and both parsers read back', async () => {
      const odd = makeWorld('Ada Lovelace/100% $HOME & <stuff>')
      try {
        const result = await createLaunchdBackend(odd.ctx).install(options)
        expect(result.success, result.message).to.equal(true)
        expect(odd.fake.calls()).to.deep.include(['bootstrap', 'gui/501', odd.serverPlist])
        const xml = readFileSync(odd.serverPlist, 'utf8')
        expect(xml).to.include('Ada Lovelace/100% $HOME &amp; &lt;stuff&gt;')
        const parsed = plist.parse(xml) as PlistObject
        expect(parsed.WorkingDirectory).to.equal(odd.home)
        expect(parsed.StandardOutPath).to.equal(join(odd.home, '.amplifier', 'server', 'server.out.log'))
        expect(throughPlistutil(xml)).to.deep.equal(parsed)
      } finally {
        odd.fake.cleanup()
        rmSync(odd.root, {recursive: true, force: true})
      }
    })
  })

  describe('uninstall', () => {
    it('boots out the watchdog, then the server, removes both plists and leaves ~/.amplifier alone', async () => {
      const backend = createLaunchdBackend(world.ctx)
      expect((await backend.install(options)).success).to.equal(true)
      const data = join(world.home, '.amplifier', 'server', 'server.out.log')
      writeFileSync(data, 'log line\n')
      writeFileSync(join(world.home, '.amplifier', '.env'), 'KEY=value\n')
      world.fake.clearCalls()
      const result = await backend.uninstall()
      expect(result.success, result.message).to.equal(true)
      expect(result.message).to.equal('Uninstalled amplifier-distro service.')
      expect(result.details).to.deep.equal([
        `Stopped ${WATCHDOG}`,
        `Stopped ${SERVER}`,
        `Removed ${world.watchdogPlist}`,
        `Removed ${world.serverPlist}`,
        `Data in ${join(world.home, '.amplifier')} was left in place.`,
      ])
      expect(world.fake.calls()).to.deep.equal([
        ['print', `gui/501/${WATCHDOG}`],
        ['print', `gui/501/${SERVER}`],
        ['bootout', `gui/501/${WATCHDOG}`],
        ['print', `gui/501/${WATCHDOG}`],
        ['bootout', `gui/501/${SERVER}`],
        ['print', `gui/501/${SERVER}`],
      ])
      expect(world.fake.loaded()).to.deep.equal({})
      expect(filesUnder(join(world.home, 'Library'))).to.deep.equal([])
      expect(filesUnder(join(world.home, '.amplifier'))).to.deep.equal(['.env', 'server/server.out.log'])
    })

    it('succeeds and says so when nothing is installed, twice over', async () => {
      const backend = createLaunchdBackend(world.ctx)
      for (let i = 0; i < 2; i++) {
        const result = await backend.uninstall()
        expect(result).to.deep.equal({success: true, platform: 'macos', message: 'amplifier-distro service is not installed; nothing to do.', details: []})
      }

      expect(world.fake.calls().every((call) => call[0] === 'print')).to.equal(true)
    })

    it('boots out a job whose plist was deleted by hand (bootout by label; remove on an old launchctl)', async () => {
      const backend = createLaunchdBackend(world.ctx)
      await backend.install(options)
      rmSync(world.serverPlist)
      const status = await backend.status()
      expect(status.server).to.deep.equal({installed: false, state: 'not-installed'})
      expect(status.warnings).to.include(`Warning: ${SERVER} is running but its plist ${world.serverPlist} is gone.\n  Run: amp-distro service uninstall`)
      world.fake.clearCalls()
      expect((await backend.uninstall()).success).to.equal(true)
      expect(world.fake.calls().slice(2)).to.deep.equal([
        ['bootout', `gui/501/${WATCHDOG}`],
        ['print', `gui/501/${WATCHDOG}`],
        ['bootout', `gui/501/${SERVER}`],
        ['print', `gui/501/${SERVER}`],
      ])

      await backend.install(options)
      world.fake.configure({unsupported: ['print', 'bootstrap', 'bootout', 'enable']})
      rmSync(world.serverPlist)
      world.fake.clearCalls()
      expect((await backend.uninstall()).success).to.equal(true)
      expect(world.fake.calls().slice(-4)).to.deep.equal([
        ['unload', world.watchdogPlist],
        ['list', WATCHDOG],
        ['remove', SERVER],
        ['list', SERVER],
      ])
      expect(world.fake.loaded()).to.deep.equal({})
    })

    // Each case: how launchd stood before the uninstall, and the launchctl calls the uninstall makes.
    const sequences: {title: string; arrange: () => void; calls: (world: World) => string[][]}[] = [
      {
        title: 'removes plists whose jobs are no longer loaded without calling bootout',
        arrange: () => world.fake.unloadAll(),
        calls: () => [
          ['print', `gui/501/${WATCHDOG}`],
          ['print', `gui/501/${SERVER}`],
        ],
      },
      {
        title: 'falls back to unload on a launchctl without bootout',
        arrange: () => world.fake.configure({unsupported: ['print', 'bootstrap', 'bootout', 'enable']}),
        calls: (w) => [
          ['print', `gui/501/${WATCHDOG}`],
          ['list', WATCHDOG],
          ['list', SERVER],
          ['unload', w.watchdogPlist],
          ['list', WATCHDOG],
          ['unload', w.serverPlist],
          ['list', SERVER],
        ],
      },
    ]
    for (const sequence of sequences) {
      it(sequence.title, async () => {
        const backend = createLaunchdBackend(world.ctx)
        await backend.install(options)
        sequence.arrange()
        world.fake.clearCalls()
        expect((await backend.uninstall()).success).to.equal(true)
        expect(world.fake.calls()).to.deep.equal(sequence.calls(world))
        expect(world.fake.loaded()).to.deep.equal({})
        expect(filesUnder(join(world.home, 'Library'))).to.deep.equal([])
      })
    }
  })

  describe('status', () => {
    let health: {server: Server; port: number} | undefined

    afterEach(async () => {
      if (health) await new Promise((resolve) => health!.server.close(resolve))
      health = undefined
    })

    it('reports both jobs running with their PIDs, a healthy server, its version and uptime', async () => {
      health = await healthServer(200, {version: '0.3.0', pid: 4321, uptimeSeconds: 3725})
      world.fake.configure({pid: 4321})
      const backend = createLaunchdBackend(world.ctx)
      expect((await backend.install({...options, port: health.port})).success).to.equal(true)
      const status = await backend.status()
      expect(status).to.deep.equal({
        success: true,
        platform: 'macos',
        message: 'amplifier-distro service is installed.',
        details: [
          'Platform: macos (launchd user agents)',
          `Server:   running, PID 4321 (${SERVER})`,
          `Watchdog: running, PID 4321 (${WATCHDOG})`,
          `Health:   http://127.0.0.1:${health.port}/api/health healthy`,
          'Version:  0.3.0 (this amp-distro: 0.3.0)',
          'Uptime:   1 h 2 min',
          'Logs:     amp-distro service logs',
        ],
        installed: true,
        server: {installed: true, state: 'running', pid: 4321},
        watchdog: {installed: true, state: 'running', pid: 4321},
        health: {url: `http://127.0.0.1:${health.port}/api/health`, healthy: true, version: '0.3.0', pid: 4321, uptimeSeconds: 3725},
        warnings: [],
        cliVersion: '0.3.0',
      })
    })

    it('warns to restart when the running server is another version than this CLI', async () => {
      health = await healthServer(200, {version: '0.2.9', pid: 1234, uptimeSeconds: 5})
      const backend = createLaunchdBackend(world.ctx)
      await backend.install({...options, port: health.port})
      const status = await backend.status()
      expect(status.details).to.include('Version:  0.2.9 (this amp-distro: 0.3.0)')
      expect(status.warnings).to.deep.equal([
        'Warning: the running server is version 0.2.9, this amp-distro is 0.3.0: the service runs the new files only once restarted.\n  Run: amp-distro service restart',
      ])
    })

    it('reads host and port back from the installed plist, not from defaults', async () => {
      health = await healthServer(503)
      const backend = createLaunchdBackend(world.ctx)
      await backend.install({...options, host: 'localhost', port: health.port})
      const status = await backend.status()
      expect(status.health).to.deep.equal({url: `http://localhost:${health.port}/api/health`, healthy: false, reason: 'HTTP 503'})
    })

    it('reports a loaded job that is not running, with no PID, and an unreachable server', async () => {
      const port = await freePort()
      world.fake.configure({state: 'not running'})
      const backend = createLaunchdBackend(world.ctx)
      await backend.install({...options, port})
      const status = await backend.status()
      expect(status.success).to.equal(true)
      expect(status.server).to.deep.equal({installed: true, state: 'not running'})
      expect(status.health).to.deep.equal({url: `http://127.0.0.1:${port}/api/health`, healthy: false, reason: 'ECONNREFUSED'})
      expect(status.details[1]).to.equal(`Server:   not running (${SERVER})`)
      expect(status.details[3]).to.equal(`Health:   http://127.0.0.1:${port}/api/health not healthy (ECONNREFUSED)`)
      expect(status.warnings).to.deep.equal([])
    })

    it('says stopped, and how to start it, for installed plists that launchd does not hold', async () => {
      const backend = createLaunchdBackend(world.ctx)
      await backend.install({...options, port: await freePort()})
      world.fake.unloadAll()
      const status = await backend.status()
      expect(status.server).to.deep.equal({installed: true, state: 'stopped'})
      expect(status.watchdog).to.deep.equal({installed: true, state: 'stopped'})
      expect(status.details.slice(1, 4)).to.deep.equal([`Server:   stopped (${SERVER})`, `Watchdog: stopped (${WATCHDOG})`, 'Start it: amp-distro service start'])
      expect(status.warnings).to.deep.equal([])
    })

    it('names the program holding the port of a server that is not running', async () => {
      health = await healthServer(404)
      const backend = createLaunchdBackend(world.ctx)
      await backend.install({...options, port: health.port})
      world.fake.configure({state: 'not running'})
      const status = await backend.status()
      expect(status.warnings).to.deep.equal([
        [
          `Warning: 127.0.0.1:${health.port} is in use by another program, so the server cannot listen there.`,
          `  See which program: lsof -nP -iTCP:${health.port} -sTCP:LISTEN`,
          '  Stop that program, or install on another port: amp-distro service install --port <port>',
        ].join('\n'),
      ])
    })

    /** Edits the installed server plist's port to `port`, as a person might by hand; returns the line that now holds it. */
    function handEditPort(plist: string, port: string): number {
      const text = readFileSync(plist, 'utf8').replace('<string>8400</string>', `<string>${port}</string>`)
      writeFileSync(plist, text)
      return text.split('\n').findIndex((row) => row.includes(`<string>${port}</string>`)) + 1
    }

    it('names a configuration error (last exit code 78) and the plist line that holds it', async () => {
      const backend = createLaunchdBackend(world.ctx)
      await backend.install(options)
      const line = handEditPort(world.serverPlist, '99999')
      writeFileSync(join(world.home, '.amplifier', 'server', 'server.err.log'), 'Error: Invalid port: "99999" (expected a whole number from 1 to 65535).\n')
      world.fake.configure({state: 'not running', lastExitCode: 78})
      const status = await backend.status()
      expect(status.warnings[0]).to.equal(
        [
          `Warning: ${SERVER} exited with status 78: its command line or configuration can never work, yet launchd starts it again every 30 s, and each start fails the same way.`,
          '  It said: [server.err.log] Error: Invalid port: "99999" (expected a whole number from 1 to 65535).',
          `  The line to fix: ${world.serverPlist}, line ${line}: <string>99999</string> (Invalid port: "99999". Use a whole number from 1 to 65535.)`,
          '  Then: amp-distro service stop && amp-distro service start (or re-run amp-distro service install --port <port>, which writes it anew)',
        ].join('\n'),
      )
    })

    it('reports a hand-edited port no server can listen on, without asking the default port', async () => {
      const backend = createLaunchdBackend(world.ctx)
      await backend.install(options)
      const line = handEditPort(world.serverPlist, '99999')
      const status = await backend.status()
      expect(status.health).to.deep.equal({url: 'http://127.0.0.1:99999/api/health', healthy: false, reason: 'port 99999 is not a TCP port'})
      expect(status.warnings[0]).to.equal(
        [
          `Warning: ${world.serverPlist} names port 99999, which is not a TCP port (1-65535): the server exits with a configuration error (exit code 78).`,
          `  Fix line ${line}: <string>99999</string>`,
          '  Or write a new one: amp-distro service install --port <port>',
        ].join('\n'),
      )
    })

    it('reads state and PID from launchctl list when print is not available', async () => {
      world.fake.configure({unsupported: ['print', 'bootstrap', 'bootout', 'enable'], pid: 555})
      const backend = createLaunchdBackend(world.ctx)
      await backend.install(options)
      world.fake.clearCalls()
      const status = await backend.status()
      expect(status.server).to.deep.equal({installed: true, state: 'running', pid: 555})
      expect(status.watchdog).to.deep.equal({installed: true, state: 'running', pid: 555})
      expect(world.fake.calls()).to.deep.equal([
        ['print', `gui/501/${WATCHDOG}`],
        ['list', WATCHDOG],
        ['list', SERVER],
      ])
    })

    it('reports nothing installed with no health check, and exits successfully', async () => {
      const status = await createLaunchdBackend(world.ctx).status()
      expect(status).to.deep.equal({
        success: true,
        platform: 'macos',
        message: 'amplifier-distro service is not installed.',
        details: [
          'Platform: macos (launchd user agents)',
          `Server:   not installed (${SERVER})`,
          `Watchdog: not installed (${WATCHDOG})`,
          'Install it: amp-distro service install',
        ],
        installed: false,
        server: {installed: false, state: 'not-installed'},
        watchdog: {installed: false, state: 'not-installed'},
        health: null,
        warnings: [],
        cliVersion: '0.3.0',
      })
    })

    it('fails (state unknown) when launchctl cannot be run and something is installed; not installed otherwise', async () => {
      const broken = {...world.ctx, env: {PATH: '/nonexistent-bin'}}
      expect(await createLaunchdBackend(broken).status()).to.deep.include({success: true, installed: false})
      await createLaunchdBackend(world.ctx).install(options)
      const status = await createLaunchdBackend(broken).status()
      expect(status.success).to.equal(false)
      expect(status.server.state).to.equal('unknown')
      expect(status.message).to.equal('Cannot read the service state: the launchd user domain is not reachable.')
      expect(status.details[1]).to.match(/^launchctl could not be run/)
      expect(status.cliVersion).to.equal('0.3.0')
    })
  })

  describe('status drift warnings', () => {
    function editPlist(file: string, edit: (value: Record<string, unknown>) => void): void {
      const value = readPlist(file) as Record<string, unknown>
      edit(value)
      writeFileSync(file, buildPlist(value as PlistObject))
    }

    // Each case: what changed after the install, and the warnings status gives for it.
    const drifts: {title: string; change: (world: World) => void; warnings: (world: World) => string[]}[] = [
      {
        title: 'a current install gets none',
        change() {},
        warnings: () => [],
      },
      {
        title: 'plists that run the deprecated amp-distro-server get one warning',
        change(w) {
          const old = join(w.root, 'prefix', 'bin', 'amp-distro-server')
          writeFileSync(old, '#!/bin/sh\n')
          for (const file of [w.serverPlist, w.watchdogPlist]) {
            editPlist(file, (value) => {
              value.ProgramArguments = [old, ...(value.ProgramArguments as string[]).slice(1)]
            })
          }
        },
        warnings: () => ["Warning: installed service references deprecated 'amp-distro-server'.\n  Run: amp-distro service uninstall && amp-distro service install"],
      },
      {
        title: 'an executable that no longer exists is named',
        change: (w) => rmSync(w.bin),
        warnings: (w) => [`Warning: installed service's executable ${w.bin} no longer exists.\n  Re-run: amp-distro service install`],
      },
      {
        title: 'a Node folder that no longer exists (as after a Node upgrade) is named',
        change: (w) => rmSync(join(w.root, 'node-v20'), {recursive: true}),
        warnings: (w) => [`Warning: installed service's Node folder ${w.nodeDir} no longer exists.\n  Re-run: amp-distro service install`],
      },
    ]

    for (const drift of drifts) {
      it(drift.title, async () => {
        const backend = createLaunchdBackend(world.ctx)
        await backend.install(options)
        drift.change(world)
        const status = await backend.status()
        expect(status.success).to.equal(true)
        expect(status.warnings).to.deep.equal(drift.warnings(world))
      })
    }

    it('warns about a plist that cannot be parsed and still reports the rest', async () => {
      const backend = createLaunchdBackend(world.ctx)
      await backend.install(options)
      writeFileSync(world.watchdogPlist, '<plist><dict><key>Label</key>')
      const status = await backend.status()
      expect(status.success).to.equal(true)
      expect(status.watchdog.installed).to.equal(true)
      expect(status.warnings).to.have.length(1)
      expect(status.warnings[0]).to.match(new RegExp(`^Warning: ${world.watchdogPlist.replaceAll(/[.*+?^${}()|[\]\\]/g, String.raw`\$&`)} is not a readable plist`))
    })
  })
})
