import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {MAX_ROUTES} from '../../src/bundle-loader.js'
import {cleanup, envFor, runCli, tempHome} from '../helpers/cli.js'
import {listFiles} from '../helpers/pack.js'

/** The oclif bundle's code cache files in a cache folder. */
function cacheFiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((file) => /^oclif\.[0-9a-f]{12}\.cjs-[0-9a-f]{8}-v8-.+\.bin$/.test(file)) : []
}

/** A home and a temporary folder of the test's own, and where the cache goes in it. */
function setup(extra: NodeJS.ProcessEnv = {}): {home: string; env: NodeJS.ProcessEnv; dir: string} {
  const home = tempHome()
  const tmp = join(home, 'tmp')
  mkdirSync(tmp)
  const env = envFor(home, {TMPDIR: tmp, NODE_COMPILE_CACHE: undefined, NODE_DISABLE_COMPILE_CACHE: undefined, ...extra})
  return {home, env, dir: join(tmp, `amp-distro-compile-cache-${process.getuid!()}`)}
}

describe('compile cache of the oclif bundle (real processes)', function () {
  this.timeout(60_000)
  after(cleanup)

  it('is written on the first oclif-routed run, read on the next, never changes the output, and leaves the home alone', async () => {
    const {home, env, dir} = setup()
    const first = await runCli(['--help'], {env})
    expect(first.code).to.equal(0)
    const [file] = cacheFiles(dir)
    expect(file, 'a cache file').to.be.a('string')
    expect(statSync(dir).mode & 0o777).to.equal(0o700)
    expect(statSync(join(dir, file)).mode & 0o777).to.equal(0o600)
    const written = readFileSync(join(dir, file))
    expect(written.length).to.be.greaterThan(10_000)

    const second = await runCli(['--help'], {env})
    expect(second).to.deep.equal(first)
    // V8 accepted the cache: it is rewritten only when missing or rejected.
    expect(readFileSync(join(dir, file)).equals(written)).to.equal(true)
    expect(readdirSync(dir).sort()).to.deep.equal([file, `${file}.routes`])
    expect(readFileSync(join(dir, `${file}.routes`), 'utf8')).to.equal('--help\n')
    expect(listFiles(home).filter((path) => !path.startsWith('tmp/'))).to.deep.equal([])
  })

  it('grows to cover each new route (command words, help or not) once, then stays as it is', async () => {
    const {env, dir} = setup()
    await runCli(['--help'], {env})
    const [file] = cacheFiles(dir)
    const before = readFileSync(join(dir, file))
    const help = await runCli(['serve', '--help'], {env})
    expect(help.code).to.equal(0)
    const grown = readFileSync(join(dir, file))
    expect(grown.length).to.be.greaterThan(before.length)
    expect(readFileSync(join(dir, `${file}.routes`), 'utf8')).to.equal('--help\nserve --help\n')

    expect(await runCli(['serve', '--help'], {env})).to.deep.equal(help)
    expect(readFileSync(join(dir, file)).equals(grown)).to.equal(true)
  })

  it(`stops growing after ${MAX_ROUTES} routes`, async () => {
    const {env, dir} = setup()
    await runCli(['--help'], {env})
    const [file] = cacheFiles(dir)
    const full = Array.from({length: MAX_ROUTES}, (_, i) => `typo${i}`)
    writeFileSync(join(dir, `${file}.routes`), `${full.join('\n')}\n`)
    const before = readFileSync(join(dir, file))
    expect((await runCli(['serve', '--help'], {env})).code).to.equal(0)
    expect(readFileSync(join(dir, file)).equals(before)).to.equal(true)
    expect(readFileSync(join(dir, `${file}.routes`), 'utf8')).to.equal(`${full.join('\n')}\n`)
  })

  it('replaces a cache V8 rejects, with the same output as without one', async () => {
    const {env, dir} = setup()
    const clean = await runCli(['serve', '--help'], {env})
    const [file] = cacheFiles(dir)
    expect(file, 'a cache file').to.be.a('string')

    writeFileSync(join(dir, file), 'not a code cache')
    const again = await runCli(['serve', '--help'], {env})
    expect(again).to.deep.equal(clean)
    expect(readFileSync(join(dir, file)).length).to.be.greaterThan(10_000)
  })

  it('goes under NODE_COMPILE_CACHE when set', async () => {
    const {home, env} = setup({NODE_COMPILE_CACHE: undefined})
    const done = await runCli(['--help'], {env: {...env, NODE_COMPILE_CACHE: join(home, 'node-cache')}})
    expect(done.code).to.equal(0)
    expect(cacheFiles(join(home, 'node-cache', 'amp-distro'))).to.have.length(1)
  })

  it('does not use a cache folder that others may write: writes nothing there', async () => {
    const {env, dir} = setup()
    mkdirSync(dir, {mode: 0o700})
    chmodSync(dir, 0o777)
    const planted = join(dir, 'oclif.000000000000.cjs-v8-planted.bin')
    writeFileSync(planted, 'planted')
    const done = await runCli(['--help'], {env})
    expect(done.code).to.equal(0)
    expect(readdirSync(dir)).to.deep.equal(['oclif.000000000000.cjs-v8-planted.bin'])
  })

  it('writes nothing with NODE_DISABLE_COMPILE_CACHE set', async () => {
    const {home, env} = setup({NODE_DISABLE_COMPILE_CACHE: '1'})
    const done = await runCli(['--help'], {env})
    expect(done.code).to.equal(0)
    expect(listFiles(home)).to.deep.equal([])
  })
})

describe('compile cache of a bundle copied to another path (real processes)', function () {
  this.timeout(60_000)
  after(cleanup)

  it('names the copy in stack traces, not the copy whose run wrote a cache first', async () => {
    const home = tempHome()
    const loader = new URL('../../src/bundle-loader.ts', import.meta.url).href
    const copies = ['first', 'second'].map((name) => {
      mkdirSync(join(home, name))
      const file = join(home, name, 'bundle.cjs')
      writeFileSync(file, "exports.where = () => new Error('here').stack.split('\\n')[1]\n")
      return file
    })
    const where = (file: string) =>
      execFileSync(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', `import {loadBundle} from ${JSON.stringify(loader)}; console.log(loadBundle(new URL(${JSON.stringify(`file://${file}`)}), {}).where())`],
        {env: {...process.env, NODE_COMPILE_CACHE: join(home, 'cache'), NODE_DISABLE_COMPILE_CACHE: ''}, encoding: 'utf8'},
      )
    expect(where(copies[0])).to.include(copies[0])
    expect(where(copies[1])).to.include(copies[1])
    expect(readdirSync(join(home, 'cache', 'amp-distro')).filter((file) => file.endsWith('.bin'))).to.have.length(2)
  })
})
