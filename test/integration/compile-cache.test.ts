import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {MAX_ROUTES} from '../../src/bundle-loader.js'
import {cleanup, envFor, runCli, tempHome} from '../helpers/cli.js'
import {listFiles} from '../helpers/pack.js'

/** The oclif bundle's code cache files in a cache folder, one per route. */
function cacheFiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((file) => /^oclif\.cjs-[0-9a-f]{8}-[0-9a-f]{16}-[0-9a-f]{8}-v8-.+\.bin$/.test(file)).sort() : []
}

/** A home and a temporary folder of the test's own, and where the cache goes in it. */
function setup(extra: NodeJS.ProcessEnv = {}): {home: string; env: NodeJS.ProcessEnv; dir: string} {
  const home = tempHome()
  const tmp = join(home, 'tmp')
  mkdirSync(tmp)
  const env = envFor(home, {TMPDIR: tmp, NODE_COMPILE_CACHE: undefined, NODE_DISABLE_COMPILE_CACHE: undefined, ...extra})
  return {home, env, dir: join(tmp, `amp-distro-compile-cache-${process.getuid!()}`)}
}

describe('compile cache of the bundle (real processes)', function () {
  this.timeout(60_000)
  after(cleanup)

  it('is written on the first run of a route, read on the next, never changes the output, and leaves the home alone', async () => {
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
    // The main bundle loads through require(), under Node's own compile cache: a command it runs adds nothing here.
    expect((await runCli(['service', 'status'], {env})).code).to.equal(0)
    expect(readdirSync(dir)).to.deep.equal([file])
    expect(listFiles(home).filter((path) => !path.startsWith('tmp/'))).to.deep.equal([])
  })

  it('keeps a cache per route (command words, help or not), each written once', async () => {
    const {env, dir} = setup()
    await runCli(['--help'], {env})
    const [helpCache] = cacheFiles(dir)
    const before = readFileSync(join(dir, helpCache))
    const serveHelp = await runCli(['serve', '--help'], {env})
    expect(serveHelp.code).to.equal(0)
    const [serveCache] = cacheFiles(dir).filter((file) => file !== helpCache)
    expect(serveCache, 'a cache for serve --help').to.be.a('string')
    const kept = readFileSync(join(dir, serveCache))

    expect(await runCli(['serve', '--help'], {env})).to.deep.equal(serveHelp)
    await runCli(['serve', '--help', '--port', '8500'], {env})
    expect(cacheFiles(dir)).to.deep.equal([helpCache, serveCache].sort())
    expect(readFileSync(join(dir, serveCache)).equals(kept)).to.equal(true)
    expect(readFileSync(join(dir, helpCache)).equals(before)).to.equal(true)
  })

  it(`keeps at most ${MAX_ROUTES} caches of one build`, async () => {
    const {env, dir} = setup()
    await runCli(['--help'], {env})
    const [file] = cacheFiles(dir)
    for (let i = 1; i < MAX_ROUTES; i++) writeFileSync(join(dir, file.replace(/-[0-9a-f]{8}-v8-/, `-${String(i).padStart(8, '0')}-v8-`)), 'another route')
    expect(cacheFiles(dir)).to.have.length(MAX_ROUTES)
    expect((await runCli(['serve', '--help'], {env})).code).to.equal(0)
    expect(cacheFiles(dir)).to.have.length(MAX_ROUTES)
  })

  it('keeps no cache of a run that failed: a mistyped command, a bad flag', async () => {
    const {env, dir} = setup()
    expect((await runCli(['serv'], {env})).code).to.equal(127)
    expect((await runCli(['service', 'status', '--bogus'], {env})).code).to.equal(2)
    expect(cacheFiles(dir)).to.deep.equal([])
  })

  it("removes the caches of this copy's earlier builds when it writes one", async () => {
    const {env, dir} = setup()
    await runCli(['--help'], {env})
    const [file] = cacheFiles(dir)
    const earlier = file.replace(/^(oclif\.cjs-[0-9a-f]{8}-)[0-9a-f]{16}-/, '$10000000000000000-')
    expect(earlier).not.to.equal(file)
    writeFileSync(join(dir, earlier), 'an earlier build')
    writeFileSync(join(dir, 'another-tool.bin'), 'not ours')
    expect((await runCli(['serve', '--help'], {env})).code).to.equal(0)
    expect(readdirSync(dir)).not.to.include(earlier)
    expect(readdirSync(dir)).to.include.members([file, 'another-tool.bin'])
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
    writeFileSync(join(dir, 'planted.bin'), 'planted')
    const done = await runCli(['--help'], {env})
    expect(done.code).to.equal(0)
    expect(readdirSync(dir)).to.deep.equal(['planted.bin'])
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
      writeFileSync(file, "// build 0123456789abcdef\nexports.where = () => new Error('here').stack.split('\\n')[1]\n")
      return file
    })
    const where = (file: string) =>
      execFileSync(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', `import {loadBundle} from ${JSON.stringify(loader)}; console.log(loadBundle(${JSON.stringify(file)}).where())`],
        {env: {...process.env, NODE_COMPILE_CACHE: join(home, 'cache'), NODE_DISABLE_COMPILE_CACHE: ''}, encoding: 'utf8'},
      )
    expect(where(copies[0])).to.include(copies[0])
    expect(where(copies[1])).to.include(copies[1])
    expect(readdirSync(join(home, 'cache', 'amp-distro')).filter((file) => file.endsWith('.bin'))).to.have.length(2)
  })
})
