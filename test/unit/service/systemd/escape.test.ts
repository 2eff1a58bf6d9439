import {expect} from 'chai'

import {UserError} from '../../../../src/lib/errors.js'
import {execCommandLine, quoteEnvironment, quoteExecArg, quoteExecPath, splitExecLine, splitUnitWords} from '../../../../src/lib/service/drivers/systemd/escape.js'

describe('systemd escaping', () => {
  describe('quoteExecArg', () => {
    it('quotes a plain argument', () => {
      expect(quoteExecArg('argument', 'serve')).to.equal('"serve"')
    })

    it('keeps a path with spaces in one argument', () => {
      expect(quoteExecArg('argument', '/opt/my tools/amp-distro')).to.equal('"/opt/my tools/amp-distro"')
    })

    it('escapes backslash, double quote, percent and dollar', () => {
      expect(quoteExecArg('argument', String.raw`100% $HOME a\b q"q`)).to.equal(String.raw`"100%% $$HOME a\\b q\"q"`)
    })

    it('escapes ${VAR} so systemd does not expand it', () => {
      expect(quoteExecArg('argument', '${PATH}')).to.equal('"$${PATH}"')
    })

    for (const [name, value] of [
      ['newline', '127.0.0.1\nExecStartPre=/bin/sh -c "touch /tmp/x"'],
      ['carriage return', 'a\rb'],
      ['tab', 'a\tb'],
      ['NUL', 'a\u0000b'],
      ['DEL', 'a\u007fb'],
      ['ESC', 'a\u001bb'],
    ]) {
      it(`refuses a ${name}`, () => {
        expect(() => quoteExecArg('host', value))
          .to.throw(UserError)
          .with.property('message')
          .that.matches(/^Invalid host: .* contains a control character\.$/)
      })
    }

    it('makes a trailing backslash literal instead of joining the next line', () => {
      expect(quoteExecArg('argument', 'dir\\')).to.equal(String.raw`"dir\\"`)
    })
  })

  describe('quoteExecPath', () => {
    it('escapes the executable like an argument but leaves $ alone, since systemd does not expand it there', () => {
      expect(quoteExecPath(String.raw`/opt/a $HOME 100% "q" b\c/amp-distro`)).to.equal(String.raw`"/opt/a $HOME 100%% \"q\" b\\c/amp-distro"`)
    })
  })

  describe('execCommandLine', () => {
    it('quotes every argument, including the executable', () => {
      expect(execCommandLine(['/a b/amp-distro', 'serve', '--host', '::1'])).to.equal('"/a b/amp-distro" "serve" "--host" "::1"')
    })

    it('doubles $ in the arguments only', () => {
      expect(execCommandLine(['/a $x/amp-distro', '$x'])).to.equal('"/a $x/amp-distro" "$$x"')
    })

    it('names the executable path when it carries a control character', () => {
      expect(() => execCommandLine(['/bin/x\ny', 'serve'])).to.throw(/^Invalid executable path:/)
    })
  })

  describe('quoteEnvironment', () => {
    it('quotes the whole assignment and keeps $ as it is', () => {
      expect(quoteEnvironment('PATH', '/a b/bin:/opt/100%/bin:/x$y')).to.equal('"PATH=/a b/bin:/opt/100%%/bin:/x$y"')
    })

    it('escapes backslashes and double quotes', () => {
      expect(quoteEnvironment('PATH', String.raw`/a\b:/c"d`)).to.equal(String.raw`"PATH=/a\\b:/c\"d"`)
    })

    it('refuses a newline in the value', () => {
      expect(() => quoteEnvironment('PATH', '/bin\nExecStartPre=/bin/true')).to.throw(UserError, /Invalid PATH value/)
    })

    it('refuses an invalid variable name', () => {
      expect(() => quoteEnvironment('A B', 'x')).to.throw(/invalid environment variable name/)
    })
  })

  describe('splitUnitWords', () => {
    const tricky = ['/opt/my tools 100% $HOME/amp-distro', 'serve', '--host', String.raw`a\b`, 'q"q', '$HOME', '${X}', '%h', '']

    it('reads back exactly what execCommandLine wrote', () => {
      expect(splitExecLine(execCommandLine(tricky))).to.deep.equal(tricky)
    })

    it('reads back an Environment= assignment with $ left alone', () => {
      const value = '/a b/bin:/opt/100%/bin:/x$$y:/q"\\'
      expect(splitUnitWords(quoteEnvironment('PATH', value), false)).to.deep.equal([`PATH=${value}`])
    })

    it('splits bare words at spaces and tabs', () => {
      expect(splitUnitWords('amp-distro  serve\t--port 8400')).to.deep.equal(['amp-distro', 'serve', '--port', '8400'])
    })
  })
})
