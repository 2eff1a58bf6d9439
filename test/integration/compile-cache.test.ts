import {expect} from 'chai'
import {existsSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {cleanup, envFor, runCli, tempHome} from '../helpers/cli.js'

/** The oclif bundle's code cache files under a cache folder. */
function cacheFiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((file) => /^oclif\.[0-9a-f]{12}\.cjs-v8-.+\.bin$/.test(file)) : []
}

describe('compile cache of the oclif bundle (real processes)', function () {
  this.timeout(60_000)
  after(cleanup)

  it('is written on the first oclif-routed run, read on the next, and never changes the output', async () => {
    const home = tempHome()
    const env = envFor(home, {XDG_CACHE_HOME: undefined, NODE_DISABLE_COMPILE_CACHE: undefined})
    const dir = join(home, '.cache', 'amplifier-distro', 'compile-cache')

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
  })

  it('replaces a cache V8 rejects, with the same output as without one', async () => {
    const home = tempHome()
    const env = envFor(home, {XDG_CACHE_HOME: join(home, 'xdg'), NODE_DISABLE_COMPILE_CACHE: undefined})
    const dir = join(home, 'xdg', 'amplifier-distro', 'compile-cache')
    const clean = await runCli(['serve', '--help'], {env})
    const [file] = cacheFiles(dir)
    expect(file, 'a cache file under XDG_CACHE_HOME').to.be.a('string')

    writeFileSync(join(dir, file), 'not a code cache')
    const again = await runCli(['serve', '--help'], {env})
    expect(again).to.deep.equal(clean)
    expect(readFileSync(join(dir, file)).length).to.be.greaterThan(10_000)
  })

  it('writes nothing with NODE_DISABLE_COMPILE_CACHE set', async () => {
    const home = tempHome()
    const done = await runCli(['--help'], {env: envFor(home, {XDG_CACHE_HOME: undefined, NODE_DISABLE_COMPILE_CACHE: '1'})})
    expect(done.code).to.equal(0)
    expect(existsSync(join(home, '.cache'))).to.equal(false)
  })
})
