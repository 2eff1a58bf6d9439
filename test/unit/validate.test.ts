import {expect} from 'chai'

import {UserError} from '../../src/lib/errors.js'
import {isLoopback, parsePort, parseWhole, refuseControlChars, validateHost} from '../../src/lib/validate.js'

function failure(fn: () => unknown): UserError {
  try {
    fn()
  } catch (error) {
    expect(error).to.be.instanceOf(UserError)
    return error as UserError
  }

  throw new Error('expected a UserError')
}

describe('validate', () => {
  describe('parsePort', () => {
    for (const [text, port] of [['1', 1], ['8400', 8400], ['65535', 65_535], [' 8080 ', 8080], ['08400', 8400]] as const) {
      it(`accepts ${JSON.stringify(text)} as ${port}`, () => expect(parsePort(text)).to.equal(port))
    }

    it('accepts a number', () => expect(parsePort(443)).to.equal(443))

    for (const text of ['0', '65536', '-1', '1.5', '1e3', '0x50', 'abc', '', ' ', '80a', '+80', '99999999999999999999']) {
      it(`refuses ${JSON.stringify(text)} with exit 1 and the range`, () => {
        const error = failure(() => parsePort(text))
        expect(error.message).to.equal(`Invalid port: ${JSON.stringify(text)}. Use a whole number from 1 to 65535.`)
        expect(error.exit).to.equal(1)
      })
    }
  })

  describe('validateHost', () => {
    for (const host of ['127.0.0.1', '0.0.0.0', '::', '::1', 'fe80::1', '2001:db8::8a2e:370:7334', 'localhost', 'example.com', 'my-host.local', 'host.example.', 'a', `${'a'.repeat(63)}.com`, 'xn--bcher-kva.example', '1host']) {
      it(`accepts ${host} unchanged`, () => expect(validateHost(host)).to.equal(host))
    }

    it('strips the brackets from a bracketed IPv6 address', () => expect(validateHost('[::1]')).to.equal('::1'))

    for (const host of ['bad_host!', 'my host', ' ', '', '-host', 'host-', 'a..b', `${'a'.repeat(64)}.com`, `${'a.'.repeat(127)}a`, '999.1.1.1', '1.2.3', '[example.com]', 'http://host', 'host:80', '::1::2']) {
      it(`refuses ${JSON.stringify(host)}`, () => {
        expect(failure(() => validateHost(host)).message).to.equal(`Invalid host: ${JSON.stringify(host)}. Use an IP address (such as 127.0.0.1) or a hostname.`)
      })
    }

    for (const host of ['a\nb', 'a\rb', 'a\tb', 'a\u0000b', 'a\u007fb', 'localhost\n']) {
      it(`refuses the control character in ${JSON.stringify(host)}`, () => {
        expect(failure(() => validateHost(host)).message).to.equal(`Invalid host: ${JSON.stringify(host)} contains a control character.`)
      })
    }
  })

  describe('refuseControlChars', () => {
    it('passes text without control characters', () => expect(() => refuseControlChars('path', '/home/a b/ü')).not.to.throw())
    it('names what it checked', () => expect(failure(() => refuseControlChars('path', 'a\nb')).message).to.equal('Invalid path: "a\\nb" contains a control character.'))
  })

  describe('parseWhole', () => {
    it('accepts whole numbers at or above the minimum', () => {
      expect(parseWhole('interval', '5', 1)).to.equal(5)
      expect(parseWhole('interval', 1, 1)).to.equal(1)
      expect(parseWhole('count', '0', 0)).to.equal(0)
    })

    for (const text of ['0', '-5', '2.5', 'five', '', '9007199254740993']) {
      it(`refuses ${JSON.stringify(text)} below or outside whole numbers`, () => {
        expect(failure(() => parseWhole('interval', text, 1)).message).to.equal(`Invalid interval: ${JSON.stringify(text)}. Use a whole number of at least 1.`)
      })
    }
  })

  describe('isLoopback', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', '::ffff:127.0.0.1']) {
      it(`${host} is loopback`, () => expect(isLoopback(host)).to.equal(true))
    }

    for (const host of ['0.0.0.0', '::', '192.168.1.10', 'example.com', '128.0.0.1', '::ffff:10.0.0.1', 'localhost.example.com']) {
      it(`${host} is not loopback`, () => expect(isLoopback(host)).to.equal(false))
    }
  })
})
