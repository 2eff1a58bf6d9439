import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {arch} from 'node:os'
import {join} from 'node:path'

import {executableTarget, readHeader} from '../helpers/executable.js'
import {requireBuild, ROOT, scratchDir, standaloneTarballs, TARBALL_TARGETS, tarballNodeVersion, unpackStandalone} from '../helpers/pack.js'

const LOCAL = `${process.platform}-${arch()}`

describe('standalone tarballs (npm run pack:tarballs, every target)', function () {
  this.timeout(900_000)
  let tarballs: Record<string, string>

  before(function () {
    this.timeout(900_000)
    requireBuild()
    tarballs = standaloneTarballs()
  })

  it('are built for all four targets', () => {
    expect(Object.keys(tarballs).sort()).to.deep.equal([...TARBALL_TARGETS].sort())
    for (const [target, tarball] of Object.entries(tarballs)) expect(tarball).to.match(new RegExp(`/dist/amp-distro-v0\\.3\\.0-[0-9a-f]+-${target}\\.tar\\.gz$`))
  })

  for (const target of TARBALL_TARGETS) {
    it(`${target}: bin/node is built for ${target}, and the CLI inside is this package`, () => {
      const dir = unpackStandalone(tarballs[target], ['amp-distro/bin/node', 'amp-distro/package.json'])
      expect(executableTarget(readHeader(join(dir, 'amp-distro', 'bin', 'node')))).to.equal(target)
      const pjson = JSON.parse(readFileSync(join(dir, 'amp-distro', 'package.json'), 'utf8')) as {name: string; version: string}
      expect(pjson).to.include({name: 'amp-distro', version: '0.3.0'})
    })
  }

  it(`${LOCAL} (this machine): the launcher runs the bundled Node ${tarballNodeVersion()}`, function () {
    if (!(LOCAL in tarballs)) this.skip()
    const dir = unpackStandalone(tarballs[LOCAL])
    const bin = join(dir, 'amp-distro', 'bin')
    expect(execFileSync(join(bin, 'node'), ['--version'], {encoding: 'utf8'}).trim()).to.equal(`v${tarballNodeVersion()}`)
    const version = execFileSync(join(bin, 'amp-distro'), ['--version'], {encoding: 'utf8', env: {...process.env, HOME: scratchDir('amp-standalone-home-')}})
    expect(version).to.match(new RegExp(`^amp-distro/0\\.3\\.0 (${process.platform}|wsl)-${arch()} node-v${tarballNodeVersion().replaceAll('.', '\\.')}\n$`))
  })

  it('refuses an unknown target with a one-line message and exit 1', () => {
    let failure: {status: number; stdout: string; stderr: string} | undefined
    try {
      execFileSync(process.execPath, [join(ROOT, 'scripts', 'pack-tarballs.mjs'), 'linux-x64,win32-x64'], {cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
    } catch (error) {
      failure = error as {status: number; stdout: string; stderr: string}
    }

    expect(failure).to.include({
      status: 1,
      stdout: '',
      stderr: 'Unknown target win32-x64: use one or more of linux-x64,linux-arm64,darwin-x64,darwin-arm64.\n',
    })
  })
})
