import {expect} from 'chai'
import {arch} from 'node:os'

import {parseWithManifest, unhandledProperties} from '../../src/fast-path.js'
import {versionLine} from '../../src/version.js'

const FLAGS = {
  host: {type: 'option', default: '127.0.0.1'},
  port: {type: 'option', default: '8400'},
  json: {type: 'boolean'},
  mode: {type: 'option', options: ['a', 'b']},
} as const

describe('fast path', () => {
  describe('parseWithManifest', () => {
    it('fills defaults for absent flags and leaves booleans without a default out', () => {
      expect(parseWithManifest(FLAGS, [])).to.deep.equal({host: '127.0.0.1', port: '8400'})
    })

    it('reads --flag value, --flag=value and booleans', () => {
      expect(parseWithManifest(FLAGS, ['--port', '9000', '--host=::1', '--json', '--mode', 'b'])).to.deep.equal({host: '::1', port: '9000', json: true, mode: 'b'})
    })

    it('passes values it does not judge (validation belongs to the action)', () => {
      expect(parseWithManifest(FLAGS, ['--port', 'abc'])).to.deep.equal({host: '127.0.0.1', port: 'abc'})
      expect(parseWithManifest(FLAGS, ['--port='])).to.deep.equal({host: '127.0.0.1', port: ''})
    })

    const declined: Array<[string, string[]]> = [
      ['help', ['--help']],
      ['short help', ['-h']],
      ['an unknown flag', ['--bogus']],
      ['a positional argument', ['extra']],
      ['a repeated flag', ['--port', '1', '--port', '2']],
      ['a flag without its value', ['--port']],
      ['a value outside options', ['--mode', 'c']],
      ['a value for a boolean', ['--json=yes']],
      ['the end-of-flags marker', ['--', '--port', '1']],
    ]
    for (const [what, args] of declined) {
      it(`leaves ${what} to oclif`, () => expect(parseWithManifest(FLAGS, args)).to.equal(undefined))
    }

    it('leaves flags that exclude each other, given together, to oclif', () => {
      const flags = {follow: {type: 'boolean', char: 'f', exclusive: ['json']}, json: {type: 'boolean'}, lines: {type: 'option', default: '50'}} as const
      expect(parseWithManifest(flags, ['--follow', '--json'])).to.equal(undefined)
      expect(parseWithManifest(flags, ['--json', '-f'])).to.equal(undefined)
      expect(parseWithManifest(flags, ['--follow'])).to.deep.equal({follow: true, lines: '50'})
      expect(parseWithManifest(flags, ['--json'])).to.deep.equal({json: true, lines: '50'})
    })

    for (const [property, value] of [
      ['required', true],
      ['dependsOn', ['json']],
      ['relationships', [{type: 'all', flags: ['json']}]],
      ['env', 'AMP_DISTRO_PORT'],
      ['aliases', ['listen-port']],
      ['deprecated', true],
    ] as const) {
      it(`leaves a command with a flag carrying ${property}, which it does not implement, to oclif`, () => {
        const flags = {port: {type: 'option', default: '8400', [property]: value}} as const
        expect(unhandledProperties(flags.port)).to.deep.equal([property])
        expect(parseWithManifest(flags, ['--port', '1'])).to.equal(undefined)
      })
    }

    it('handles flags whose other properties only shape help, or are false', () => {
      const port = {type: 'option', default: '8400', name: 'port', description: 'TCP port.', helpGroup: 'GLOBAL', hasDynamicHelp: false, hidden: false, required: false} as const
      expect(unhandledProperties(port)).to.deep.equal([])
      expect(parseWithManifest({port}, ['--port', '1'])).to.deep.equal({port: '1'})
    })

    it('leaves commands with multiple-value flags to oclif', () => {
      expect(parseWithManifest({tag: {type: 'option', multiple: true}}, [])).to.equal(undefined)
    })

    it('reads the --no- form of a flag that allows it, and leaves both forms together to oclif', () => {
      const flags = {watchdog: {type: 'boolean', allowNo: true}, json: {type: 'boolean'}} as const
      expect(parseWithManifest(flags, [])).to.deep.equal({})
      expect(parseWithManifest(flags, ['--watchdog'])).to.deep.equal({watchdog: true})
      expect(parseWithManifest(flags, ['--no-watchdog'])).to.deep.equal({watchdog: false})
      expect(parseWithManifest(flags, ['--watchdog', '--no-watchdog'])).to.equal(undefined)
      expect(parseWithManifest(flags, ['--no-watchdog', '--no-watchdog'])).to.equal(undefined)
      expect(parseWithManifest(flags, ['--no-watchdog=false'])).to.equal(undefined)
      expect(parseWithManifest(flags, ['--no-json'])).to.equal(undefined)
    })
  })

  describe('versionLine', () => {
    it("matches oclif's user agent", () => {
      expect(versionLine('amplifier-distro', '0.3.0')).to.match(new RegExp(`^amplifier-distro/0\\.3\\.0 (${process.platform}|wsl)-${arch()} node-${process.version.replaceAll('.', '\\.')}$`))
    })
  })
})
