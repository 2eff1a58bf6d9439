import {expect} from 'chai'
import {chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {cleanup, envFor, runCli, tempHome} from '../helpers/cli.js'
import {listFiles} from '../helpers/pack.js'

/** The oclif bundle's code cache files in a cache folder. */
function cacheFiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((file) => /^oclif\.[0-9a-f]{12}\.cjs-v8-.+\.bin$/.test(file)) : []
}

/** A home and a temporary folder of the test's own, and where the cache goes in it. */
function setup(extra: NodeJS.ProcessEnv = {}): {home: string; env: NodeJS.ProcessEnv; dir: string} {
  const home = tempHome()
  const tmp = join(home, 'tmp')
  mkdirSync(tmp)
  const env = envFor(home, {TMPDIR: tmp, NODE_COMPILE_CACHE: undefined, NODE_DISABLE_COMPILE_CACHE: undefined, ...extra})
  return {home, env, dir: join(tmp, `amplifier-distro-compile-cache-${process.getuid!()}`)}
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
    expect(readdirSync(dir)).to.deep.equal([file])
    expect(listFiles(home).filter((path) => !path.startsWith('tmp/'))).to.deep.equal([])
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
    expect(cacheFiles(join(home, 'node-cache', 'amplifier-distro'))).to.have.length(1)
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
