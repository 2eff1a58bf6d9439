import {expect} from 'chai'
import {appendFileSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, truncateSync, utimesSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {createFileLogger} from '../../../../src/lib/watchdog/logger.js'
import {pathsFor} from '../../../../src/lib/paths.js'
import {launchdLogFiles, readLogs} from '../../../../src/lib/service/drivers/launchd/logs.js'
import type {LogLine} from '../../../../src/lib/service/types.js'

/**
 * A follow's waits, under the test's control: each `poll()` ends the wait
 * readLogs is in and returns once it has read the files and waits again.
 */
function pollControl() {
  let wake: (() => void) | undefined
  const sleep = (_ms: number, signal: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      wake = resolve
      signal.addEventListener('abort', () => reject(signal.reason), {once: true})
    })
  async function poll(): Promise<void> {
    const current = wake
    wake = undefined
    current?.()
    while (!wake) await new Promise((resolve) => setImmediate(resolve))
  }

  return {sleep, poll, started: async () => poll()}
}

describe('launchd logs', function () {
  this.timeout(30_000)
  let home: string
  let dir: string
  let files: ReturnType<typeof pathsFor>

  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'launchd-logs-'))
    files = pathsFor(home)
    dir = files.serverDir
    mkdirSync(dir, {recursive: true})
  })

  afterEach(() => {
    rmSync(home, {recursive: true, force: true})
  })

  /** Writes a file and sets its modification time to `second` seconds after the epoch. */
  function write(file: string, text: string, second: number): void {
    writeFileSync(file, text)
    utimesSync(file, second, second)
  }

  async function read(lines: number): Promise<LogLine[]> {
    const out: LogLine[] = []
    await readLogs(launchdLogFiles(files), {lines, follow: false, signal: new AbortController().signal, write: (line) => out.push(line)})
    return out
  }

  it('keeps each file together, orders files by when they last changed, and marks every line with its file', async () => {
    write(files.serverStdoutLog, 'Amplifier distro server 0.3.0 listening on http://127.0.0.1:8400 (PID 10)\n', 1000)
    write(files.watchdogLog, '2026-12-01T10:00:00.000Z INFO watchdog started\n2026-12-01T10:00:05.000Z WARN unhealthy (ECONNREFUSED)\n', 2000)
    write(files.serverStderrLog, 'Error: Cannot listen on 127.0.0.1:8400: address already in use (another process holds the port).\n', 3000)
    expect(await read(50)).to.deep.equal([
      {source: 'server.out.log', text: '[server.out.log] Amplifier distro server 0.3.0 listening on http://127.0.0.1:8400 (PID 10)'},
      {source: 'watchdog.log', text: '[watchdog.log] 2026-12-01T10:00:00.000Z INFO watchdog started'},
      {source: 'watchdog.log', text: '[watchdog.log] 2026-12-01T10:00:05.000Z WARN unhealthy (ECONNREFUSED)'},
      {source: 'server.err.log', text: '[server.err.log] Error: Cannot listen on 127.0.0.1:8400: address already in use (another process holds the port).'},
    ])
  })

  // Each case: --lines, and which of the merged lines (out 1-3, then err 1-2) it prints.
  const counts: [number, string[]][] = [
    [0, []],
    [2, ['[server.err.log] e1', '[server.err.log] e2']],
    [3, ['[server.out.log] o3', '[server.err.log] e1', '[server.err.log] e2']],
    [50, ['[server.out.log] o1', '[server.out.log] o2', '[server.out.log] o3', '[server.err.log] e1', '[server.err.log] e2']],
  ]
  for (const [lines, expected] of counts) {
    it(`--lines ${lines} prints the last ${lines} of the merged lines`, async () => {
      write(files.serverStdoutLog, 'o1\no2\no3\n', 1000)
      write(files.serverStderrLog, 'e1\ne2\n', 2000)
      expect((await read(lines)).map((line) => line.text)).to.deep.equal(expected)
    })
  }

  // Each case: --lines, and the lines it prints from watchdog.log (w1, w2), .1 (r1-r3) and .2 (o1-o3), oldest first.
  const rotated: [number, string[]][] = [
    [2, ['[watchdog.log] w1', '[watchdog.log] w2']],
    [4, ['[watchdog.log.1] r2', '[watchdog.log.1] r3', '[watchdog.log] w1', '[watchdog.log] w2']],
    [7, ['[watchdog.log.2] o2', '[watchdog.log.2] o3', '[watchdog.log.1] r1', '[watchdog.log.1] r2', '[watchdog.log.1] r3', '[watchdog.log] w1', '[watchdog.log] w2']],
    [50, ['[watchdog.log.2] o1', '[watchdog.log.2] o2', '[watchdog.log.2] o3', '[watchdog.log.1] r1', '[watchdog.log.1] r2', '[watchdog.log.1] r3', '[watchdog.log] w1', '[watchdog.log] w2']],
  ]
  for (const [lines, expected] of rotated) {
    it(`--lines ${lines}: lines the current watchdog.log lacks come from watchdog.log.1, then .2, oldest first`, async () => {
      write(`${files.watchdogLog}.2`, 'o1\no2\no3\n', 1000)
      write(`${files.watchdogLog}.1`, 'r1\nr2\nr3\n', 2000)
      write(files.watchdogLog, 'w1\nw2\n', 3000)
      // Written before watchdog.log, yet after the rotated files: it goes before the whole watchdog log.
      write(files.serverStderrLog, 'e1\n', 2500)
      expect((await read(lines)).map((line) => line.text)).to.deep.equal(lines > 8 ? ['[server.err.log] e1', ...expected] : expected)
    })
  }

  it('reads back what the watchdog logger wrote across two rotations, oldest first', async () => {
    const line = (i: number) => `message ${String(i).padStart(2, '0')}`
    // Each line is about 50 bytes: a limit of 160 bytes rotates every third line.
    const log = createFileLogger({file: files.watchdogLog, maxBytes: 160, now: () => new Date(Date.UTC(2026, 11, 1, 10))})
    for (let i = 1; i <= 8; i++) log.info(line(i))
    expect(existsSync(`${files.watchdogLog}.2`)).to.equal(true)
    const printed = (await read(50)).map((entry) => entry.text)
    expect(printed.map((text) => text.replace(/^\[(watchdog\.log(?:\.\d)?)\] \S+ INFO /, '$1 '))).to.deep.equal([
      'watchdog.log.2 message 01',
      'watchdog.log.2 message 02',
      'watchdog.log.2 message 03',
      'watchdog.log.1 message 04',
      'watchdog.log.1 message 05',
      'watchdog.log.1 message 06',
      'watchdog.log message 07',
      'watchdog.log message 08',
    ])
  })

  it('reads the last lines of a file larger than one read, and a last line with no newline yet', async () => {
    const many = Array.from({length: 20_000}, (_, i) => `line ${i} ${'x'.repeat(20)}`)
    write(files.serverStderrLog, `${many.join('\n')}\npartial`, 1000)
    expect((await read(3)).map((line) => line.text)).to.deep.equal([`[server.err.log] ${many.at(-2)}`, `[server.err.log] ${many.at(-1)}`, '[server.err.log] partial'])
  })

  it('--follow prints new lines, across truncation in place, rotation and a file that appears, until the signal fires', async () => {
    write(files.serverStdoutLog, 'first\n', 1000)
    write(files.serverStderrLog, 'a long line that the truncation will cut away\n', 1001)
    write(files.watchdogLog, '2026-12-01T10:00:00.000Z INFO before rotation\n', 1002)
    write(files.watchdogStdoutLog, 'half of a line', 999)
    const seen: string[] = []
    const stop = new AbortController()
    const control = pollControl()
    const following = readLogs(launchdLogFiles(files), {lines: 10, follow: true, signal: stop.signal, sleep: control.sleep, write: (line) => seen.push(line.text)})
    await control.started()
    expect(seen).to.have.length(3)

    appendFileSync(files.serverStdoutLog, 'second\nthird, wri')
    await control.poll()
    expect(seen).to.include('[server.out.log] second')
    appendFileSync(files.serverStdoutLog, 'tten in two parts\n')
    truncateSync(files.serverStderrLog, 0)
    appendFileSync(files.serverStderrLog, 'short\n')
    renameSync(files.watchdogLog, `${files.watchdogLog}.1`)
    writeFileSync(files.watchdogLog, '2026-12-01T10:01:00.000Z INFO after rotation\n')
    writeFileSync(files.watchdogStderrLog, 'a file that was not there\n')
    appendFileSync(files.watchdogStdoutLog, ', and its end\n')
    await control.poll()
    stop.abort()
    expect(await following).to.equal(9)
    expect(seen.slice(0, 3)).to.deep.equal([
      '[server.out.log] first',
      '[server.err.log] a long line that the truncation will cut away',
      '[watchdog.log] 2026-12-01T10:00:00.000Z INFO before rotation',
    ])
    expect(seen.slice(3).sort()).to.deep.equal(
      [
        '[server.out.log] second',
        '[server.out.log] third, written in two parts',
        '[server.err.log] short',
        '[watchdog.err.log] a file that was not there',
        '[watchdog.log] 2026-12-01T10:01:00.000Z INFO after rotation',
        '[watchdog.out.log] half of a line, and its end',
      ].sort(),
    )
  })
})
