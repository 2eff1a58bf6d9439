import {expect} from 'chai'
import {chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import sinon from 'sinon'

import {isNpxCachePath, resolveBinary} from '../../src/lib/binary.js'
import {UserError} from '../../src/lib/errors.js'
import {renderResult} from '../../src/lib/service/result.js'
import {execCommand, streamLines} from '../../src/lib/process/exec.js'

describe('binary resolution', () => {
  let dir: string

  function executable(...parts: string[]): string {
    const file = join(dir, ...parts)
    mkdirSync(join(file, '..'), {recursive: true})
    writeFileSync(file, '#!/bin/sh\n')
    chmodSync(file, 0o755)
    return file
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'amp-distro-binary-'))
  })

  afterEach(() => {
    sinon.restore()
    rmSync(dir, {recursive: true, force: true})
  })

  it('prefers AMP_DISTRO_BINPATH, then the running program, then PATH', () => {
    const launcher = executable('tarball', 'bin', 'amp-distro')
    const running = executable('global', 'bin', 'amp-distro')
    const onPath = executable('path', 'amp-distro')
    const env = {AMP_DISTRO_BINPATH: launcher, PATH: join(dir, 'path')}
    expect(resolveBinary({argv: ['node', running], env, cwd: '/'})).to.deep.equal({path: launcher, source: 'env'})
    expect(resolveBinary({argv: ['node', running], env: {PATH: env.PATH}, cwd: '/'})).to.deep.equal({path: running, source: 'argv'})
    expect(resolveBinary({argv: ['node'], env: {PATH: env.PATH}, cwd: '/'})).to.deep.equal({path: onPath, source: 'path'})
  })

  it('makes a relative running program absolute', () => {
    const running = executable('checkout', 'bin', 'run.js')
    expect(resolveBinary({argv: ['node', 'bin/run.js'], env: {}, cwd: join(dir, 'checkout')})).to.deep.equal({path: running, source: 'argv'})
  })

  it('accepts the npm global symlink as it is', () => {
    const target = executable('lib', 'node_modules', 'amp-distro', 'bin', 'run.js')
    mkdirSync(join(dir, 'bin'))
    symlinkSync(target, join(dir, 'bin', 'amp-distro'))
    expect(resolveBinary({argv: ['node', join(dir, 'bin', 'amp-distro')], env: {}, cwd: '/'}).path).to.equal(join(dir, 'bin', 'amp-distro'))
  })

  it('skips candidates that are missing or not executable', () => {
    const plain = join(dir, 'plain', 'amp-distro')
    mkdirSync(join(dir, 'plain'))
    writeFileSync(plain, '#!/bin/sh\n', {mode: 0o644})
    const onPath = executable('path', 'amp-distro')
    const env = {AMP_DISTRO_BINPATH: join(dir, 'missing', 'amp-distro'), PATH: `${join(dir, 'plain')}:${join(dir, 'path')}`}
    expect(resolveBinary({argv: ['node', plain], env, cwd: '/'})).to.deep.equal({path: onPath, source: 'path'})
  })

  it('skips a directory named amp-distro', () => {
    mkdirSync(join(dir, 'path', 'amp-distro'), {recursive: true})
    const second = executable('later', 'amp-distro')
    expect(resolveBinary({argv: ['node'], env: {PATH: `${join(dir, 'path')}:${join(dir, 'later')}`}, cwd: '/'}).path).to.equal(second)
  })

  it('prefers a durable copy on PATH over one running from the npx cache', () => {
    const npx = executable('.npm', '_npx', 'a1b2c3', 'node_modules', '.bin', 'amp-distro')
    const durable = executable('global', 'bin', 'amp-distro')
    expect(isNpxCachePath(npx)).to.equal(true)
    const env = {PATH: `${join(dir, '.npm', '_npx', 'a1b2c3', 'node_modules', '.bin')}:${join(dir, 'global', 'bin')}`}
    expect(resolveBinary({argv: ['node', npx], env, cwd: '/'})).to.deep.equal({path: durable, source: 'path'})
  })

  it('refuses to use the npx cache when there is no durable copy, saying how to install one', () => {
    const npx = executable('.npm', '_npx', 'a1b2c3', 'node_modules', '.bin', 'amp-distro')
    const env = {PATH: join(dir, '.npm', '_npx', 'a1b2c3', 'node_modules', '.bin')}
    expect(() => resolveBinary({argv: ['node', npx], env, cwd: '/'}))
      .to.throw(UserError)
      .that.satisfies((error: UserError) => error.message.includes("npx's cache") && error.details.some((line) => line.includes('npm install -g amp-distro')))
  })

  it('reads process.argv and PATH when given no dependencies', () => {
    const running = executable('global', 'bin', 'amp-distro')
    const onPath = executable('path', 'amp-distro')
    sinon.stub(process, 'argv').value(['node', running])
    sinon.stub(process.env, 'PATH').value(join(dir, 'path'))
    if (process.env.AMP_DISTRO_BINPATH !== undefined) sinon.stub(process.env, 'AMP_DISTRO_BINPATH').value(undefined)
    expect(resolveBinary().path).to.equal(running)
    sinon.stub(process, 'argv').value(['node', join(dir, 'nothing-here')])
    expect(resolveBinary().path).to.equal(onPath)
  })

  it('makes a service install fail with the exact not-found message', async () => {
    // This test file is compiled to CommonJS: the resolver and the service core must come from the same
    // module instances (ES module imports) for the resolver's UserError to be recognised.
    const esm = await import('../../src/lib/binary.js')
    const {runServiceCommand} = await import('../../src/lib/service/run.js')
    const empty = join(dir, 'empty')
    mkdirSync(empty)
    const result = await runServiceCommand(
      'install',
      {},
      {
        platform: 'linux',
        context: {
          home: dir,
          env: {PATH: empty},
          uid: 0,
          user: 'root',
          exec: execCommand,
          stream: streamLines,
          version: '0.3.0',
          nodePath: process.execPath,
          resolveBinary: () => esm.resolveBinary({argv: ['node'], env: {PATH: empty}, cwd: dir}),
        },
      },
    )
    expect(renderResult(result, false)).to.deep.equal({
      stdout: '',
      stderr: 'Failed: amp-distro binary not found.\n  Ensure the directory holding amp-distro is on PATH, or reinstall: npm install -g amp-distro\n',
      exitCode: 1,
    })
  })
})
