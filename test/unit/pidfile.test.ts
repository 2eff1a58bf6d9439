import {expect} from 'chai'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {removeFile} from '../../src/lib/files.js'
import {readPid, removePidIfOwned, writePid} from '../../src/lib/pidfile.js'

describe('pidfile', () => {
  let dir: string

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'amp-distro-pidfile-'))
  })

  afterEach(() => rmSync(dir, {recursive: true, force: true}))

  describe('readPid', () => {
    it('reads a PID with or without surrounding whitespace', () => {
      writeFileSync(join(dir, 'a.pid'), '1234\n')
      writeFileSync(join(dir, 'b.pid'), '  42 \r\n')
      expect(readPid(join(dir, 'a.pid'))).to.equal(1234)
      expect(readPid(join(dir, 'b.pid'))).to.equal(42)
    })

    it('treats a missing file as absent', () => expect(readPid(join(dir, 'missing.pid'))).to.equal(undefined))

    it('treats a directory as absent', () => expect(readPid(dir)).to.equal(undefined))

    for (const text of ['', 'garbage', '0', '-5', '12.5', '1e3', '12 34', '0x10', '4194305', '99999999999', '123abc']) {
      it(`treats ${JSON.stringify(text)} as absent`, () => {
        writeFileSync(join(dir, 'x.pid'), text)
        expect(readPid(join(dir, 'x.pid'))).to.equal(undefined)
      })
    }
  })

  describe('writePid', () => {
    it('creates missing directories and writes the PID with a newline, readable by all', () => {
      const file = join(dir, 'a', 'b', 'server.pid')
      writePid(file, 4321)
      expect(readFileSync(file, 'utf8')).to.equal('4321\n')
      expect(statSync(file).mode & 0o777).to.equal(0o644 & ~process.umask())
    })

    it('replaces an existing file whole and leaves no temporary file behind', () => {
      const file = join(dir, 'server.pid')
      writeFileSync(file, 'old contents that are longer than a pid\n')
      writePid(file, 7)
      expect(readFileSync(file, 'utf8')).to.equal('7\n')
      expect(readdirSync(dir)).to.deep.equal(['server.pid'])
    })

    it('throws when the directory cannot be created, writing nothing', () => {
      writeFileSync(join(dir, 'blocker'), '')
      expect(() => writePid(join(dir, 'blocker', 'server', 'server.pid'), 1)).to.throw(/ENOTDIR/)
      expect(readdirSync(dir)).to.deep.equal(['blocker'])
    })
  })

  describe('removePidIfOwned', () => {
    it('removes the file when it names the given PID', () => {
      const file = join(dir, 'server.pid')
      writePid(file, 99)
      removePidIfOwned(file, 99)
      expect(existsSync(file)).to.equal(false)
    })

    it("leaves a successor's file alone", () => {
      const file = join(dir, 'server.pid')
      writePid(file, 100)
      removePidIfOwned(file, 99)
      expect(readFileSync(file, 'utf8')).to.equal('100\n')
    })

    it('leaves a garbage file alone and ignores a missing one', () => {
      const file = join(dir, 'server.pid')
      writeFileSync(file, 'garbage')
      removePidIfOwned(file, 99)
      expect(readFileSync(file, 'utf8')).to.equal('garbage')
      expect(() => removePidIfOwned(join(dir, 'missing.pid'), 99)).not.to.throw()
    })
  })

  describe('removeFile', () => {
    it('removes a file and ignores one that is already gone', () => {
      const file = join(dir, 'f')
      writeFileSync(file, '')
      removeFile(file)
      expect(existsSync(file)).to.equal(false)
      expect(() => removeFile(file)).not.to.throw()
    })

    it('reports other failures', () => {
      mkdirSync(join(dir, 'sub'))
      expect(() => removeFile(join(dir, 'sub'))).to.throw()
      expect(existsSync(join(dir, 'sub'))).to.equal(true)
    })
  })
})
