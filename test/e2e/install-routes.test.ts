import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import {readFileSync, readlinkSync} from 'node:fs'
import {join} from 'node:path'

import {checkHealth} from '../../src/lib/health.js'
import {globalInstall, requireBuild, ROOT, scratchDir} from '../helpers/pack.js'
import {freePort} from '../helpers/cli.js'
import {expectOk, SERVER} from './service-fixtures.js'
import {describeSystemd, type UserManager, waitFor} from './systemd-harness.js'

/** Waits for the server unit to run and answer its health check; returns its main PID. */
async function runningServer(manager: UserManager, port: number): Promise<number> {
  const pid = await waitFor(
    async () => {
      const {ActiveState, MainPID} = await manager.show(SERVER, ['ActiveState', 'MainPID'])
      return ActiveState === 'active' && Number(MainPID) > 0 ? Number(MainPID) : undefined
    },
    {timeoutMs: 30_000, what: `${SERVER} to run`},
  )
  await waitFor(async () => (await checkHealth(`http://127.0.0.1:${port}/api/health`, 2000)).healthy, {timeoutMs: 30_000, what: 'the installed server to answer its health check'})
  return pid
}

/** The program systemd starts for the unit (`path=` of its ExecStart property). */
async function execStartPath(manager: UserManager): Promise<string> {
  const {ExecStart} = await manager.show(SERVER, ['ExecStart'])
  const match = /path=([^ ;]+)/.exec(ExecStart)
  expect(match, `ExecStart property: ${ExecStart}`).not.to.equal(null)
  return match![1]
}

describe('npm global install (npm install -g --prefix <dir> <tarball>)', function () {
  this.timeout(240_000)
  before(requireBuild)

  it('service install --dry-run shows units that run the installed copy', () => {
    const prefix = globalInstall()
    const home = scratchDir('amp-global-home-')
    const out = execFileSync(join(prefix, 'bin', 'amp-distro'), ['service', 'install', '--dry-run', '--port', '8512'], {
      encoding: 'utf8',
      env: {...process.env, HOME: home, XDG_CONFIG_HOME: undefined},
    })
    const bin = join(prefix, 'bin', 'amp-distro')
    expect(out).to.include(`ExecStart="${bin}" "serve" "--host" "127.0.0.1" "--port" "8512"`)
    const execStarts = out.split('\n').filter((line) => line.trim().startsWith('ExecStart='))
    expect(execStarts.every((line) => line.trim().startsWith(`ExecStart="${bin}" `)), execStarts.join('\n')).to.equal(true)
  })
})

describeSystemd('npm global install under a real systemd user manager', (ctx) => {
  before(function () {
    this.timeout(240_000)
    requireBuild()
    globalInstall()
  })

  it('service install from the installed copy starts the unit, which runs that copy and answers health', async () => {
    const manager = ctx()
    const bin = join(globalInstall(), 'bin', 'amp-distro')
    const port = await freePort()
    expectOk(await manager.run(bin, ['service', 'install', '--port', String(port), '--no-watchdog']))
    const pid = await runningServer(manager, port)
    expect(await execStartPath(manager)).to.equal(bin)
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    expect(argv.slice(1, 3)).to.deep.equal([bin, 'serve'])
  })
})

describeSystemd('standalone tarball (npm run pack:tarballs) under a real systemd user manager', (ctx) => {
  let launcher: string
  let bundledNode: string

  before(function () {
    this.timeout(600_000)
    requireBuild()
    const out = execFileSync(process.execPath, [join(ROOT, 'scripts', 'pack-tarballs.mjs'), 'linux-x64'], {cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
    const tarball = out.trim().split('\n').pop()!
    expect(tarball).to.match(/amp-distro-v0\.3\.0-[0-9a-f]+-linux-x64\.tar\.gz$/)
    const dir = scratchDir('amp-standalone-')
    execFileSync('tar', ['-xzf', tarball, '-C', dir])
    launcher = join(dir, 'amp-distro', 'bin', 'amp-distro')
    bundledNode = join(dir, 'amp-distro', 'bin', 'node')
  })

  it('carries its own Node, and bin/amp-distro runs it', () => {
    expect(execFileSync(bundledNode, ['--version'], {encoding: 'utf8'}).trim()).to.equal(process.version)
    const version = execFileSync(launcher, ['--version'], {encoding: 'utf8', env: {...process.env, HOME: scratchDir('amp-standalone-home-')}})
    expect(version).to.match(/^amp-distro\/0\.3\.0 linux-x64 node-v/)
  })

  it("service install runs the launcher from the unit, and the server's /proc/<MainPID>/exe is the bundled Node", async () => {
    const manager = ctx()
    const port = await freePort()
    const installed = expectOk(await manager.run(launcher, ['service', 'install', '--port', String(port), '--no-watchdog']))
    expect(installed.stdout).to.match(/^Installed amplifier-distro\.service/)
    const pid = await runningServer(manager, port)
    expect(await execStartPath(manager)).to.equal(launcher)
    const unit = readFileSync(join(manager.home, '.config', 'systemd', 'user', SERVER), 'utf8')
    expect(unit).to.include(`ExecStart="${launcher}" "serve" "--host" "127.0.0.1" "--port" "${port}"`)
    expect(readlinkSync(`/proc/${pid}/exe`)).to.equal(bundledNode)
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    expect(argv.slice(0, 3)).to.deep.equal([bundledNode, join(launcher, '..', 'run'), 'serve'])
  })
})
