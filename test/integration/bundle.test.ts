import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, sep} from 'node:path'
import {pathToFileURL} from 'node:url'

import {requireBuild, ROOT} from '../helpers/pack.js'

describe('the bundle (dist/amp-distro.cjs) and what a run loads besides it', () => {
  let dir: string
  before(() => {
    requireBuild()
    dir = mkdtempSync(join(tmpdir(), 'amp-bundle-'))
    // Loaded with --import before bin/run.js: records, at exit, the files the run required, and as it
    // goes the files it imported as ES modules (oclif imports its plugins), which require.cache never holds.
    writeFileSync(
      join(dir, 'imported.mjs'),
      "import {appendFileSync} from 'node:fs'\nexport async function load(url, context, next) {\n  if (url.startsWith('file:')) appendFileSync(process.env.RECORD_TO + '.imported', new URL(url).pathname + '\\n')\n  return next(url, context)\n}\n",
    )
    writeFileSync(
      join(dir, 'record.mjs'),
      [
        "import {writeFileSync} from 'node:fs'",
        "import {createRequire, register} from 'node:module'",
        "register('./imported.mjs', import.meta.url)",
        "process.on('exit', () => writeFileSync(process.env.RECORD_TO, JSON.stringify(Object.keys(createRequire(import.meta.url).cache))))",
      ].join('\n'),
    )
  })
  after(() => rmSync(dir, {recursive: true, force: true}))

  /** The packages under node_modules that a run of `args` required. */
  function packagesLoaded(args: string[]): string[] {
    const record = join(dir, 'loaded.json')
    const home = mkdtempSync(join(dir, 'home-'))
    rmSync(`${record}.imported`, {force: true})
    spawnSync(process.execPath, ['--import', pathToFileURL(join(dir, 'record.mjs')).href, join(ROOT, 'bin', 'run.js'), ...args], {env: {...process.env, HOME: home, RECORD_TO: record}, stdio: 'ignore'})
    const imported = existsSync(`${record}.imported`) ? readFileSync(`${record}.imported`, 'utf8').split('\n').filter(Boolean) : []
    const files = [...(JSON.parse(readFileSync(record, 'utf8')) as string[]), ...imported]
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
