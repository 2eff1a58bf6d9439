import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, sep} from 'node:path'

import {requireBuild, ROOT} from '../helpers/pack.js'

describe('the bundle (dist/amp-distro.cjs) and what a run loads besides it', () => {
  let dir: string
  before(() => {
    requireBuild()
    dir = mkdtempSync(join(tmpdir(), 'amp-bundle-'))
    // Loaded with --require before bin/run.js: records, at exit, the files the run required.
    writeFileSync(join(dir, 'record.cjs'), "process.on('exit', () => require('node:fs').writeFileSync(process.env.RECORD_TO, JSON.stringify(Object.keys(require.cache))))\n")
  })
  after(() => rmSync(dir, {recursive: true, force: true}))

  /** The packages under node_modules that a run of `args` required. */
  function packagesLoaded(args: string[]): string[] {
    const record = join(dir, 'loaded.json')
    const home = mkdtempSync(join(dir, 'home-'))
    spawnSync(process.execPath, ['--require', join(dir, 'record.cjs'), join(ROOT, 'bin', 'run.js'), ...args], {env: {...process.env, HOME: home, RECORD_TO: record}, stdio: 'ignore'})
    const files = JSON.parse(readFileSync(record, 'utf8')) as string[]
    const marker = `${sep}node_modules${sep}`
    return [...new Set(files.filter((file) => file.includes(marker)).map((file) => file.slice(file.lastIndexOf(marker) + marker.length).split(sep).slice(0, 2).join('/')))]
  }

  it('answers --version and the service commands without loading a package from node_modules, the oclif plugins included', () => {
    for (const args of [['--version'], ['service', 'status'], ['service', 'uninstall'], ['serve', '--port', 'abc']]) {
      expect(packagesLoaded(args), args.join(' ')).to.deep.equal([])
    }
  })

  it('loads the not-found plugin, with the oclif it depends on, for a mistyped command', () => {
    expect(packagesLoaded(['serv'])).to.include.members(['@oclif/plugin-not-found', '@oclif/core'])
  })
})
