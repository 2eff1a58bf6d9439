import {expect} from 'chai'
import {execFile} from 'node:child_process'
import {readdirSync, readFileSync} from 'node:fs'
import {arch} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {freePort, PACKAGE, runCli} from '../helpers/cli.js'
import {listFiles, packageTarball, pathWithoutAmpDistro, requireBuild, scratchDir} from '../helpers/pack.js'
import {type Registry, startRegistry} from '../helpers/registry.js'
import {execStartPath, runningServer} from './installed-service.js'
import {expectOk} from './service-fixtures.js'
import {describeSystemd} from './systemd-harness.js'

const execFileAsync = promisify(execFile)

interface Done {
  code: number
  stdout: string
  stderr: string
}

/** Runs a command to completion; never throws for a non-zero exit. */
async function run(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<Done> {
  try {
    const {stdout, stderr} = await execFileAsync(file, args, {env, timeout: 300_000, maxBuffer: 16 * 1024 * 1024})
    return {code: 0, stdout, stderr}
  } catch (error) {
    const failed = error as {code?: number | string; stdout?: string; stderr?: string}
    return {code: typeof failed.code === 'number' ? failed.code : 1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? String(error)}
  }
}

describe('the npm route through a loopback registry (verdaccio on 127.0.0.1)', function () {
  this.timeout(300_000)
  let registry: Registry | undefined

  /**
   * A new user's environment: a fresh HOME with an empty npm cache, npm told
   * only about the loopback registry, no `npm_*` variables inherited from an
   * `npm test` around this run, and no amp-distro on PATH.
   */
  function newUser(): {home: string; env: NodeJS.ProcessEnv} {
    const home = scratchDir('amp-registry-home-')
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)))
    return {
      home,
      env: {...env, HOME: home, PATH: pathWithoutAmpDistro(), npm_config_cache: join(home, '.npm'), npm_config_userconfig: registry!.npmrc, npm_config_update_notifier: 'false'},
    }
  }

  before(async function () {
    this.timeout(600_000)
    requireBuild()
    try {
      registry = await startRegistry(PACKAGE.name)
    } catch (error) {
      const reason = `the loopback registry did not start: ${(error as Error).message}`
      if (process.env.CI === 'true') throw new Error(reason)
      console.log(`      skipping: ${reason}`)
      this.skip()
    }

    const published = await run('npm', ['publish', packageTarball(), '--ignore-scripts'], newUser().env)
    expect(published.code, published.stderr).to.equal(0)
  })

  after(async () => {
    await registry?.stop()
  })

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && registry) console.log(`----- verdaccio log -----\n${registry.log()}\n----- end of log -----`)
  })

  it('holds the published package, served from 127.0.0.1 only, with its dependencies proxied', async () => {
    const {env} = newUser()
    const view = await run('npm', ['view', `${PACKAGE.name}@${PACKAGE.version}`, 'name', 'version', 'dist.tarball', '--json'], env)
    expect(view.code, view.stderr).to.equal(0)
    const shown = JSON.parse(view.stdout) as Record<string, string>
    expect(shown).to.include({name: 'amp-distro', version: '0.3.0'})
    expect(shown['dist.tarball']).to.equal(`${registry!.url}amp-distro/-/amp-distro-0.3.0.tgz`)
    const dependency = await run('npm', ['view', 'which@5', 'version'], env)
    expect(dependency.code, dependency.stderr).to.equal(0)
  })

  it('npx --yes amp-distro --version runs the published package from a clean cache', async () => {
    const {home, env} = newUser()
    const done = await run('npx', ['--yes', 'amp-distro', '--version'], env)
    expect(done.code, done.stderr).to.equal(0)
    expect(done.stdout).to.match(new RegExp(`^amp-distro/0\\.3\\.0 (${process.platform}|wsl)-${arch()} node-${process.version.replaceAll('.', '\\.')}\\n$`))
    const [npxDir] = readdirSync(join(home, '.npm', '_npx'))
    const installed = JSON.parse(readFileSync(join(home, '.npm', '_npx', npxDir, 'node_modules', 'amp-distro', 'package.json'), 'utf8')) as {version: string}
    expect(installed.version).to.equal('0.3.0')
  })

  it('npx --yes amp-distro service status gives what the checkout gives, output and exit code', async () => {
    const {env} = newUser()
    const viaNpx = await run('npx', ['--yes', 'amp-distro', 'service', 'status'], env)
    const direct = await runCli(['service', 'status'], {env})
    expect(viaNpx.stdout).to.equal(direct.stdout)
    expect(viaNpx.stderr).to.equal(direct.stderr)
    expect(viaNpx.code).to.equal(direct.code)
    expect(viaNpx.stdout + viaNpx.stderr).to.include('amplifier-distro service is not installed')
  })

  it('npx --yes amp-distro service install refuses to point units into the npx cache, and names the npm command that works', async () => {
    const {home, env} = newUser()
    const done = await run('npx', ['--yes', 'amp-distro', 'service', 'install'], env)
    expect(done.code).to.not.equal(0)
    expect(done.stderr).to.include("amp-distro is running from npx's cache")
    expect(done.stderr).to.include('npm install -g amp-distro\n')
    expect(listFiles(home).filter((file) => !file.startsWith('.npm/'))).to.deep.equal([])
  })

  describeSystemd('npm install -g --prefix <dir> amp-distro, then service install under a real systemd user manager', (ctx) => {
    it('installs from the registry, and the unit runs that install and answers health', async () => {
      const {env} = newUser()
      const prefix = scratchDir('amp-registry-global-')
      const installed = await run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', 'amp-distro'], env)
      expect(installed.code, installed.stderr).to.equal(0)
      const lib = join(prefix, 'lib', 'node_modules', 'amp-distro')
      expect(JSON.parse(readFileSync(join(lib, 'package.json'), 'utf8'))).to.include({name: 'amp-distro', version: '0.3.0'})
      expect(readdirSync(join(lib, 'node_modules')).sort()).to.include.members(['plist', 'which'])

      const manager = ctx()
      const bin = join(prefix, 'bin', 'amp-distro')
      const port = await freePort()
      expectOk(await manager.run(bin, ['service', 'install', '--port', String(port), '--no-watchdog']))
      const pid = await runningServer(manager, port)
      expect(await execStartPath(manager)).to.equal(bin)
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
      expect(argv.slice(1, 3)).to.deep.equal([bin, 'serve'])
    })
  })
})
