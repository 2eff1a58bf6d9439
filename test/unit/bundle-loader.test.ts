import {expect} from 'chai'
import {chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {asksForHelp, cacheFileName, compileCacheDir, loadBundle, privateDir, routeOf} from '../../src/bundle-loader.js'

describe('compileCacheDir', () => {
  it("is a folder of the user's own in the temporary folder", () => {
    expect(compileCacheDir({}, '/tmp', 1000)).to.equal('/tmp/amp-distro-compile-cache-1000')
    expect(compileCacheDir({}, '/tmp', undefined)).to.equal('/tmp/amp-distro-compile-cache')
  })

  it('follows an absolute NODE_COMPILE_CACHE and ignores a relative one', () => {
    expect(compileCacheDir({NODE_COMPILE_CACHE: '/var/cache/node'}, '/tmp', 1000)).to.equal('/var/cache/node/amp-distro')
    expect(compileCacheDir({NODE_COMPILE_CACHE: 'cache'}, '/tmp', 1000)).to.equal('/tmp/amp-distro-compile-cache-1000')
  })

  it('is off with NODE_DISABLE_COMPILE_CACHE', () => {
    expect(compileCacheDir({NODE_DISABLE_COMPILE_CACHE: '1', NODE_COMPILE_CACHE: '/var/cache/node'}, '/tmp', 1000)).to.equal(undefined)
  })
})

describe('cacheFileName', () => {
  it('names the bundle, a hash of its path, the build, a hash of the route, the V8 version and the architecture', () => {
    expect(cacheFileName('/opt/a/dist/amp-distro.cjs', '0123456789abcdef', '--help', '11.3.244.8-node.38', 'x64')).to.match(
      /^amp-distro\.cjs-[0-9a-f]{8}-0123456789abcdef-[0-9a-f]{8}-v8-11\.3\.244\.8-node\.38-x64\.bin$/,
    )
  })

  it('differs between copies of the same bundle at different paths, builds and routes, and not between runs of one', () => {
    const a = cacheFileName('/opt/a/dist/amp-distro.cjs', 'b1', '--help')
    expect(cacheFileName('/opt/a/dist/amp-distro.cjs', 'b1', '--help')).to.equal(a)
    expect(cacheFileName('/opt/b/dist/amp-distro.cjs', 'b1', '--help')).not.to.equal(a)
    expect(cacheFileName('/opt/a/dist/amp-distro.cjs', 'b2', '--help')).not.to.equal(a)
    expect(cacheFileName('/opt/a/dist/amp-distro.cjs', 'b1', 'serve --help')).not.to.equal(a)
  })
})

describe('privateDir', () => {
  let base: string
  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'amp-private-'))
  })
  afterEach(() => rmSync(base, {recursive: true, force: true}))

  it('creates a missing folder with mode 0700 and accepts it', () => {
    expect(privateDir(join(base, 'a', 'cache'))).to.equal(true)
  })

  it('refuses a folder others may write, a symlink and a file', () => {
    const open = join(base, 'open')
    mkdirSync(open, {mode: 0o700})
    chmodSync(open, 0o777)
    expect(privateDir(open)).to.equal(false)

    const target = join(base, 'target')
    mkdirSync(target, {mode: 0o700})
    symlinkSync(target, join(base, 'link'))
    expect(privateDir(join(base, 'link'))).to.equal(false)

    writeFileSync(join(base, 'file'), '')
    expect(privateDir(join(base, 'file'))).to.equal(false)
  })
})

describe('routeOf', () => {
  it('is the command words before the first flag, and whether help was asked for', () => {
    expect(routeOf(['--help'])).to.equal('--help')
    expect(routeOf(['serve', '--help'])).to.equal('serve --help')
    expect(routeOf(['service', 'install', '--port', '8500'])).to.equal('service install')
    expect(routeOf(['service', 'install', '-h'])).to.equal('service install --help')
    expect(routeOf(['help', 'service', 'install'])).to.equal('help service install')
    expect(routeOf([])).to.equal('')
  })

  it('keeps flag values out of the route', () => {
    expect(routeOf(['serve', '--port', '8500'])).to.equal(routeOf(['serve', '--port', '8600']))
  })
})

describe('asksForHelp', () => {
  it('is true for --help or -h anywhere, flag values and words after -- included, as the fast path declines all of them', () => {
    expect(asksForHelp(['--help'])).to.equal(true)
    expect(asksForHelp(['service', 'install', '-h'])).to.equal(true)
    expect(asksForHelp(['serve', '--host', '-h'])).to.equal(true)
    expect(asksForHelp(['serve', '--', '--help'])).to.equal(true)
    expect(asksForHelp(['help', 'serve'])).to.equal(false)
    expect(asksForHelp(['serve', '--port', '8500'])).to.equal(false)
  })
})

describe('loadBundle', () => {
  let dir: string
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'amp-loader-'))
  })
  after(() => rmSync(dir, {recursive: true, force: true}))

  it('runs a bundle once per process, and answers a require of a bundle it ran with that run’s exports', () => {
    const runs = join(dir, 'runs')
    writeFileSync(runs, '')
    const first = join(dir, 'first.cjs')
    const second = join(dir, 'second.cjs')
    writeFileSync(first, `// build 0123456789abcdef\nrequire('node:fs').appendFileSync(${JSON.stringify(runs)}, 'first ')\nexports.second = () => require('./second.cjs')\n`)
    writeFileSync(second, `// build 0123456789abcdef\nrequire('node:fs').appendFileSync(${JSON.stringify(runs)}, 'second ')\nexports.first = () => require(${JSON.stringify(first)})\n`)
    const env = {NODE_DISABLE_COMPILE_CACHE: '1'}
    const a = loadBundle(first, {env})
    const b = loadBundle(second, {env})
    expect(loadBundle(first, {env})).to.equal(a)
    expect((a.second as () => unknown)()).to.equal(b)
    expect((b.first as () => unknown)()).to.equal(a)
    expect(readFileSync(runs, 'utf8')).to.equal('first second ')
  })
})
