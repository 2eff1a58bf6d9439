import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, sep} from 'node:path'

import {requireBuild, ROOT} from '../helpers/pack.js'

describe('the oclif bundle (dist/oclif.<hash>.cjs)', () => {
  before(requireBuild)

  it("sorts the commands without an ICU collator only where that keeps oclif's order", () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, unknown>}
    const ids = Object.keys(manifest.commands)
    expect(ids).to.include.members(['help', 'serve', 'service:status'])
    const byLocale = [...ids].sort((a, b) => a.localeCompare(b))
    const byCodeUnit = [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    const bundle = readdirSync(join(ROOT, 'dist')).find((file) => /^oclif\.[0-9a-f]{12}\.cjs$/.test(file))!
    const code = readFileSync(join(ROOT, 'dist', bundle), 'utf8')
    expect(code.includes('localeCompare')).to.equal(JSON.stringify(byLocale) !== JSON.stringify(byCodeUnit))
  })
})

describe('the fast path (dist/lib/fast-path.cjs)', () => {
  let dir: string
  before(() => {
    requireBuild()
    dir = mkdtempSync(join(tmpdir(), 'amp-fast-path-'))
    // Loaded with --require before bin/run.js: records, at exit, the Node built-ins and the files the run loaded.
    writeFileSync(
      join(dir, 'record.cjs'),
      "process.on('exit', () => require('node:fs').writeFileSync(process.env.RECORD_TO, JSON.stringify({builtins: process.moduleLoadList, files: Object.keys(require.cache)})))\n",
    )
  })
  after(() => rmSync(dir, {recursive: true, force: true}))

  function loaded(args: string[]): {builtins: string[]; files: string[]} {
    const record = join(dir, 'loaded.json')
    const home = mkdtempSync(join(dir, 'home-'))
    const run = spawnSync(process.execPath, ['--require', join(dir, 'record.cjs'), join(ROOT, 'bin', 'run.js'), ...args], {
      env: {...process.env, HOME: home, RECORD_TO: record},
      encoding: 'utf8',
    })
    expect(run.status, run.stderr).to.equal(0)
    return JSON.parse(readFileSync(record, 'utf8')) as {builtins: string[]; files: string[]}
  }

  // Node's bootstrap loads parts of the ES module loader; these load only when it loads a module.
  const esmLoader = (builtins: string[]) =>
    builtins.filter((name) => ['NativeModule internal/modules/esm/module_job', 'NativeModule internal/modules/esm/translators'].includes(name))

  it('answers --version and the service commands without starting the ES module loader', () => {
    for (const args of [['--version'], ['service', 'status'], ['service', 'install', '--dry-run', '--no-watchdog'], ['service', 'uninstall']]) {
      const {builtins, files} = loaded(args)
      expect(esmLoader(builtins), args.join(' ')).to.deep.equal([])
      expect(files.map((file) => file.slice(ROOT.length)), args.join(' ')).to.include('dist/lib/fast-path.cjs')
    }
  })

  it('keeps service status on Linux from loading node:http or the plist parser when no unit is installed', function () {
    if (process.platform !== 'linux') this.skip()
    const {builtins, files} = loaded(['service', 'status'])
    expect(builtins).not.to.include('NativeModule http')
    expect(files.filter((file) => file.includes(`${sep}node_modules${sep}`))).to.deep.equal([])
  })

  it('starts the ES module loader for oclif when the fast path declines (help)', () => {
    expect(esmLoader(loaded(['--help']).builtins)).not.to.deep.equal([])
  })
})
