import {expect} from 'chai'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {createFileLogger, DEFAULT_MAX_LOG_BYTES} from '../../src/lib/watchdog/logger.js'

describe('file logger', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'amp-distro-log-'))
  })
  afterEach(() => rmSync(dir, {recursive: true, force: true}))

  const fixedNow = () => new Date('2026-01-02T03:04:05.000Z')

  it('writes timestamped lines to the file (creating its folder) and echoes them without the timestamp', () => {
    const file = join(dir, 'server', 'watchdog.log')
    const echoed: string[] = []
    const log = createFileLogger({file, echo: (line) => echoed.push(line), now: fixedNow})
    log.info('started')
    log.warn('Port still busy — will retry next cycle')
    log.error('giving up')
    expect(readFileSync(file, 'utf8')).to.equal(
      '2026-01-02T03:04:05.000Z INFO started\n' +
        '2026-01-02T03:04:05.000Z WARN Port still busy — will retry next cycle\n' +
        '2026-01-02T03:04:05.000Z ERROR giving up\n',
    )
    expect(echoed).to.deep.equal(['INFO started', 'WARN Port still busy — will retry next cycle', 'ERROR giving up'])
  })

  it('rotates before a line would pass the threshold and keeps two old files', () => {
    const file = join(dir, 'watchdog.log')
    const log = createFileLogger({file, maxBytes: 100, echo: () => {}, now: fixedNow})
    // Each line is 24 (time) + 6 (' INFO ') + 10 + 1 = 41 bytes: two fit in 100, a third does not.
    for (let i = 0; i < 9; i++) log.info(`message ${String(i).padStart(2, '0')}`)
    const lines = (name: string) => readFileSync(name, 'utf8').trim().split('\n').map((line) => line.slice(-10))
    expect(lines(file)).to.deep.equal(['message 08'])
    expect(lines(`${file}.1`)).to.deep.equal(['message 06', 'message 07'])
    expect(lines(`${file}.2`)).to.deep.equal(['message 04', 'message 05'])
    expect(existsSync(`${file}.3`)).to.be.false
    for (const name of [file, `${file}.1`, `${file}.2`]) expect(statSync(name).size).to.be.at.most(100)
  })

  it('rotates a file that an earlier run left above the threshold', () => {
    const file = join(dir, 'watchdog.log')
    writeFileSync(file, 'x'.repeat(500))
    createFileLogger({file, maxBytes: 100, echo: () => {}, now: fixedNow}).info('fresh')
    expect(readFileSync(file, 'utf8')).to.equal('2026-01-02T03:04:05.000Z INFO fresh\n')
    expect(readFileSync(`${file}.1`, 'utf8')).to.equal('x'.repeat(500))
  })

  it('defaults to a 5 MiB threshold', () => {
    expect(DEFAULT_MAX_LOG_BYTES).to.equal(5 * 1024 * 1024)
    const file = join(dir, 'watchdog.log')
    writeFileSync(file, 'x'.repeat(DEFAULT_MAX_LOG_BYTES - 100))
    const log = createFileLogger({file, echo: () => {}, now: fixedNow})
    log.info('still fits')
    expect(existsSync(`${file}.1`)).to.be.false
    log.info('y'.repeat(100))
    expect(statSync(`${file}.1`).size).to.equal(DEFAULT_MAX_LOG_BYTES - 100 + 41)
  })

  it('keeps logging to the echo when the file cannot be written, and says so once', () => {
    // A folder where the file should be fails even for root, who ignores file modes.
    const file = join(dir, 'watchdog.log')
    mkdirSync(file)
    const echoed: string[] = []
    const log = createFileLogger({file, echo: (line) => echoed.push(line), now: fixedNow})
    log.info('one')
    log.info('two')
    expect(echoed.filter((line) => line.startsWith('WARN cannot write'))).to.have.length(1)
    expect(echoed.filter((line) => line.startsWith('INFO'))).to.deep.equal(['INFO one', 'INFO two'])
  })
})
