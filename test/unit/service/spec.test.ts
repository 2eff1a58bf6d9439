import {expect} from 'chai'

import {UserError} from '../../../src/lib/errors.js'
import {execCommand, streamLines} from '../../../src/lib/process/exec.js'
import {flagValue, makeUnitSpec, unitPath} from '../../../src/lib/service/spec.js'
import type {ServiceContext} from '../../../src/lib/service/types.js'

function context(overrides: Partial<ServiceContext> = {}): ServiceContext {
  return {
    home: '/home/ada',
    env: {PATH: '/usr/bin:/bin'},
    uid: 1000,
    user: 'ada',
    exec: execCommand,
    stream: streamLines,
    version: '0.3.0',
    nodePath: '/opt/node v20/bin/node',
    resolveBinary: () => ({path: '/opt/tools/amp-distro'}),
    ...overrides,
  }
}

describe('unit spec', () => {
  describe('unitPath', () => {
    it("puts the Node folder first, then the installing shell's PATH", () => {
      expect(unitPath('/home/ada/.nvm/versions/node/v20.20.2/bin/node', '/usr/local/bin:/usr/bin')).to.equal(
        '/home/ada/.nvm/versions/node/v20.20.2/bin:/usr/local/bin:/usr/bin',
      )
    })

    it('drops empty and relative entries and repeats', () => {
      expect(unitPath('/usr/bin/node', ':/usr/bin:.:bin:/bin:/bin:')).to.equal('/usr/bin:/bin')
    })

    it('copes with no PATH at all', () => {
      expect(unitPath('/opt/node/bin/node', undefined)).to.equal('/opt/node/bin')
    })
  })

  describe('makeUnitSpec', () => {
    it('builds a spec from valid values', () => {
      expect(makeUnitSpec(context(), {host: 'localhost', port: '8500'})).to.deep.equal({
        bin: '/opt/tools/amp-distro',
        host: 'localhost',
        port: 8500,
        path: '/opt/node v20/bin:/usr/bin:/bin',
        home: '/home/ada',
      })
    })

    it('refuses a host carrying a newline (directive injection) before resolving anything', () => {
      let resolved = false
      const ctx = context({
        resolveBinary() {
          resolved = true
          return {path: '/opt/tools/amp-distro'}
        },
      })
      expect(() => makeUnitSpec(ctx, {host: '127.0.0.1\nExecStartPre=/bin/sh -c "touch /tmp/x"', port: 8400})).to.throw(UserError, /^Invalid host/)
      expect(resolved).to.equal(false)
    })

    it('validates the port exactly as serve does', () => {
      for (const port of ['0', '65536', '80x', '-1', '']) {
        expect(() => makeUnitSpec(context(), {host: '127.0.0.1', port}), port).to.throw(UserError, /^Invalid port/)
      }
    })

    it('refuses a binary path with a control character', () => {
      expect(() => makeUnitSpec(context({resolveBinary: () => ({path: '/opt/a\nb/amp-distro'})}), {host: '127.0.0.1', port: 8400})).to.throw(
        UserError,
        /^Invalid amp-distro path/,
      )
    })

    it('refuses a PATH with a control character', () => {
      expect(() => makeUnitSpec(context({env: {PATH: '/usr/bin:/x\ny'}}), {host: '127.0.0.1', port: 8400})).to.throw(UserError, /^Invalid PATH/)
    })
  })
})

describe('reading a flag back from an installed command line (units and plists alike)', () => {
  const argv = ['/usr/local/bin/amp-distro', 'serve', '--host', '::1', '--port=8500', '--verbose']
  const cases: [string, string | undefined][] = [
    ['--host', '::1'],
    ['--port', '8500'],
    ['--check-interval', undefined],
  ]
  for (const [flag, value] of cases) {
    it(`${flag}: ${value ?? 'absent'}`, () => expect(flagValue(argv, flag)).to.equal(value))
  }

  it('a flag that ends the line has no value', () => expect(flagValue(['serve', '--port'], '--port')).to.equal(undefined))
})
