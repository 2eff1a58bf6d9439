import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import {readFileSync, readlinkSync} from 'node:fs'
import {arch} from 'node:os'
import {join} from 'node:path'

import {globalInstall, requireBuild, scratchDir, standaloneTarballs, tarballNodeVersion, unpackStandalone} from '../helpers/pack.js'
import {freePort} from '../helpers/cli.js'
import {execStartPath, runningServer} from './installed-service.js'
import {expectOk, SERVER} from './service-fixtures.js'
import {describeSystemd} from './systemd-harness.js'

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
    this.timeout(900_000)
    requireBuild()
    const tarball = standaloneTarballs()[`${process.platform}-${arch()}`]
    expect(tarball, `a tarball for ${process.platform}-${arch()}`).to.be.a('string')
    const dir = unpackStandalone(tarball)
    launcher = join(dir, 'amp-distro', 'bin', 'amp-distro')
    bundledNode = join(dir, 'amp-distro', 'bin', 'node')
  })

  it('carries its own Node, the pinned one, and bin/amp-distro runs it', () => {
    expect(execFileSync(bundledNode, ['--version'], {encoding: 'utf8'}).trim()).to.equal(`v${tarballNodeVersion()}`)
    const version = execFileSync(launcher, ['--version'], {encoding: 'utf8', env: {...process.env, HOME: scratchDir('amp-standalone-home-')}})
    expect(version).to.match(new RegExp(`^amp-distro/0\\.3\\.0 linux-x64 node-v${tarballNodeVersion().replaceAll('.', '\\.')}\n$`))
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
