import {expect} from 'chai'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {removeFile} from '../../src/lib/files.js'
import {UserError} from '../../src/lib/errors.js'
import {claimCommandPid, claimPidFile, readPid, removePidIfOwned} from '../../src/lib/process/pidfile.js'

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

  describe('claimPidFile', () => {
    const holderIs = (pid: number) => ({isHolder: (candidate: number) => candidate === pid})

    it('creates missing directories and writes the PID with a newline, readable by all, leaving no other file', async () => {
      const file = join(dir, 'a', 'b', 'server.pid')
      expect(await claimPidFile(file, 4321, holderIs(-1))).to.deep.equal({kind: 'claimed'})
      expect(readFileSync(file, 'utf8')).to.equal('4321\n')
      expect(statSync(file).mode & 0o777).to.equal(0o644 & ~process.umask())
      expect(readdirSync(join(dir, 'a', 'b'))).to.deep.equal(['server.pid'])
    })

    it('leaves a file held by a live holder alone and names the holder', async () => {
      const file = join(dir, 'server.pid')
      writeFileSync(file, `${process.pid}\n`)
      expect(await claimPidFile(file, 99_999, holderIs(process.pid))).to.deep.equal({kind: 'held', pid: process.pid})
      expect(readFileSync(file, 'utf8')).to.equal(`${process.pid}\n`)
    })

    const stale: Array<[string, string]> = [
      ['a dead process', '4194304\n'],
      ['a live process of another kind', `${process.pid}\n`],
      ['this very PID, left by an earlier process', '4242\n'],
      ['garbage', 'not a pid'],
      ['nothing', ''],
    ]
    for (const [what, content] of stale) {
      it(`takes over a file naming ${what}`, async () => {
        const file = join(dir, 'server.pid')
        writeFileSync(file, content)
        expect(await claimPidFile(file, 4242, holderIs(-1))).to.deep.equal({kind: 'claimed'})
        expect(readFileSync(file, 'utf8')).to.equal('4242\n')
        expect(readdirSync(dir)).to.deep.equal(['server.pid'])
      })
    }

    it('throws when the directory cannot be created, writing nothing', async () => {
      writeFileSync(join(dir, 'blocker'), '')
      let error: unknown
      try {
        await claimPidFile(join(dir, 'blocker', 'server', 'server.pid'), 1, holderIs(-1))
      } catch (caught) {
        error = caught
      }

      expect(String(error)).to.match(/ENOTDIR/)
      expect(readdirSync(dir)).to.deep.equal(['blocker'])
    })
  })

  describe('claimCommandPid', () => {
    const refuse = (holder: number) => new UserError(`held by ${holder}`)

    it('takes over a file naming a live process that is not that command (this test runner is no amp-distro serve)', async () => {
      const file = join(dir, 'server.pid')
      writeFileSync(file, `${process.pid}\n`)
      await claimCommandPid(file, 4242, 'serve', refuse)
      expect(readPid(file)).to.equal(4242)
    })

    it('turns a file that cannot be written into a UserError naming it, without calling held', async () => {
      writeFileSync(join(dir, 'blocker'), '')
      const file = join(dir, 'blocker', 'server', 'watchdog.pid')
      let error: unknown
      try {
        await claimCommandPid(file, 4242, 'watchdog', refuse)
      } catch (caught) {
        error = caught
      }

      expect(error).to.be.instanceOf(UserError)
      expect((error as UserError).message.startsWith(`Cannot write the PID file ${file}: ENOTDIR`)).to.equal(true)
    })
  })

  describe('removePidIfOwned', () => {
    it('removes the file when it names the given PID', () => {
      const file = join(dir, 'server.pid')
      writeFileSync(file, '99\n')
      removePidIfOwned(file, 99)
      expect(existsSync(file)).to.equal(false)
    })

    it("leaves a successor's file alone", () => {
      const file = join(dir, 'server.pid')
      writeFileSync(file, '100\n')
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
