import {expect} from 'chai'
import {closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import sinon from 'sinon'

import {boundOutput, isRegularFile, MAX_OUTPUT_BYTES, openBoundedAppend, truncateIfOver} from '../../src/lib/process/output-bound.js'

describe('output bound', () => {
  let dir: string
  const fds: number[] = []
  const now = () => new Date('2026-01-02T03:04:05.000Z')
  const MARKER = '--- 2026-01-02T03:04:05.000Z amp-distro emptied this file: it had grown past 100 bytes ---\n'

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'amp-distro-output-'))
  })

  afterEach(() => {
    for (const fd of fds.splice(0)) closeSync(fd)
    rmSync(dir, {recursive: true, force: true})
  })

  /** A file opened for appending, as launchd opens StandardOutPath. */
  function appendFd(content: string): {file: string; fd: number} {
    const file = join(dir, 'out.log')
    writeFileSync(file, content)
    const fd = openSync(file, 'a')
    fds.push(fd)
    return {file, fd}
  }

  it('states a 5 MiB bound', () => expect(MAX_OUTPUT_BYTES).to.equal(5 * 1024 * 1024))

  it('empties a regular file over the bound in place, says so, and later writes land at its new end', () => {
    const {file, fd} = appendFd('x'.repeat(101))
    expect(truncateIfOver(fd, 100, now)).to.be.true
    writeSync(fd, 'next line\n')
    expect(readFileSync(file, 'utf8')).to.equal(`${MARKER}next line\n`)
  })

  it('leaves a file at or under the bound alone', () => {
    const {file, fd} = appendFd('x'.repeat(100))
    expect(truncateIfOver(fd, 100, now)).to.be.false
    expect(statSync(file).size).to.equal(100)
  })

  it('tells regular files from other descriptors, and never truncates a directory or a closed descriptor', () => {
    const {fd} = appendFd('')
    expect(isRegularFile(fd)).to.be.true
    const folder = openSync(dir, 'r')
    fds.push(folder)
    expect(isRegularFile(folder)).to.be.false
    expect(truncateIfOver(folder, 0)).to.be.false
    expect(isRegularFile(123_456)).to.be.false
    expect(truncateIfOver(123_456, 0)).to.be.false
  })

  it('keeps checking: a file that grows past the bound later is emptied by the periodic check', async () => {
    const clock = sinon.useFakeTimers({toFake: ['setInterval', 'clearInterval']})
    const {file, fd} = appendFd('')
    const stop = boundOutput([fd], 100, 20)
    try {
      writeSync(fd, 'y'.repeat(500))
      clock.tick(19)
      expect(statSync(file).size).to.equal(500)
      clock.tick(1)
      expect(readFileSync(file, 'utf8')).to.match(/^--- \S+ amp-distro emptied this file: it had grown past 100 bytes ---\n$/)
    } finally {
      stop()
      clock.restore()
    }
  })

  it('opens crash.log for appending, creating its folder, and empties it first when over the bound', () => {
    const file = join(dir, 'server', 'crash.log')
    const fd = openBoundedAppend(file, 100)
    fds.push(fd)
    writeSync(fd, 'first\n')
    expect(readFileSync(file, 'utf8')).to.equal('first\n')
    writeSync(fd, 'z'.repeat(200))
    const again = openBoundedAppend(file, 100)
    fds.push(again)
    writeSync(again, 'second\n')
    expect(readFileSync(file, 'utf8')).to.match(/emptied this file[^\n]*\nsecond\n$/)
  })

  it('refuses a crash.log path whose folder cannot be created', () => {
    writeFileSync(join(dir, 'blocker'), '')
    expect(() => openBoundedAppend(join(dir, 'blocker', 'crash.log'))).to.throw(/EEXIST|ENOTDIR/)
  })
})
