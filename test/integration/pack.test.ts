import {expect} from 'chai'
import {cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'

import {listFiles, npmPack, requireBuild, ROOT, unpack} from '../helpers/pack.js'

/** What the npm package must hold for the checkout at `root`: the runtime files and nothing else. */
function expectedFiles(root: string): string[] {
  const files = ['package.json', 'LICENSE', 'oclif.manifest.json', 'bin/run.js', 'bin/package.json']
  if (existsSync(join(root, 'README.md'))) files.push('README.md')
  files.push(...listFiles(join(root, 'dist')).filter((file) => /\.c?js$/.test(file)).map((file) => `dist/${file}`))
  if (existsSync(join(root, 'templates'))) files.push(...listFiles(join(root, 'templates')).map((file) => `templates/${file}`))
  return files.sort()
}

describe('npm pack', function () {
  this.timeout(120_000)
  const scratch: string[] = []

  before(requireBuild)

  after(() => {
    for (const dir of scratch) rmSync(dir, {recursive: true, force: true})
  })

  function packed(root: string): string[] {
    const destination = mkdtempSync(join(tmpdir(), 'amp-pack-'))
    const tarball = npmPack(root, destination)
    const dir = unpack(tarball)
    scratch.push(destination, dirname(dir))
    return listFiles(dir)
  }

  it('ships the entry script, the compiled code, the manifest, templates, README and LICENSE, and nothing else', () => {
    const files = packed(ROOT)
    expect(files).to.deep.equal(expectedFiles(ROOT))
    expect(files).to.include.members(['bin/run.js', 'bin/package.json', 'dist/amp-distro.cjs', 'dist/oclif.cjs', 'dist/version.cjs', 'oclif.manifest.json', 'package.json', 'LICENSE'])
  })

  it('leaves out standalone tarballs under dist/, scratch output under tmp/, old .tgz files, sources, tests and source maps', () => {
    const stage = mkdtempSync(join(tmpdir(), 'amp-pack-stage-'))
    scratch.push(stage)
    cpSync(ROOT, stage, {
      recursive: true,
      filter: (source) => !['node_modules', '.git', 'tmp'].some((name) => source === join(ROOT, name)),
    })
    const expected = expectedFiles(stage)
    const planted = [
      'dist/amp-distro-v0.3.0-0abc123-linux-x64.tar.gz',
      'dist/amp-distro-v0.3.0-0abc123-linux-x64.tar.xz',
      'dist/amp-distro-v0.3.0-0abc123-linux-x64-buildmanifest',
      'dist/lib/paths.js.map',
      'dist/oclif.d.ts',
      'tmp/linux-x64/amp-distro/bin/run.js',
      'tmp/cache/node-v20.20.2-linux-x64/node',
      'amp-distro-0.2.0.tgz',
    ]
    for (const file of planted) {
      mkdirSync(dirname(join(stage, file)), {recursive: true})
      writeFileSync(join(stage, file), 'planted')
    }

    const files = packed(stage)
    expect(files).to.deep.equal(expected)
    expect(files.filter((file) => /^(src|test|bench|scripts|tmp)\//.test(file))).to.deep.equal([])
  })
})
