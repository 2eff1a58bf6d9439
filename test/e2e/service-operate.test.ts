/**
 * `service install | start | stop | restart | logs` and the status additions, driven through the
 * built CLI against a real systemd user manager with a real journald (the e2e harness).
 */
import {expect} from 'chai'
import {type ChildProcess} from 'node:child_process'
import {cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {type Server} from 'node:http'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {accepts, freePort, hasStackTrace, PACKAGE, REPO, RUN_JS} from '../helpers/cli.js'
import {healthPid} from '../helpers/processes.js'
import {cli, cliOk, holdPort, release, SERVER, shortenWatchdogIntervals, steadyServer, steadyWatchdog, systemctlOk, toolProcesses, unitDir, WATCHDOG} from './service-fixtures.js'
import {describeSystemd, harnessUnavailable, type RunResult, startUserManager, type UserManager, waitFor} from './systemd-harness.js'

const INSTALL_HINT = 'amp-distro service install'

/** The fields every service command's `--json` object has. */
interface JsonResult {
  success: boolean
  platform: string
  message: string
  details: string[]
  serving?: {url: string; healthy: boolean; pid?: number; previousPid?: number; version?: string; elapsedMs: number; waitSeconds: number}
  lines?: {source: string; text: string}[]
  warnings?: string[]
}

function output(result: RunResult): string {
  return result.stdout + result.stderr
}

/** Parses a `--json` answer and checks the fields every service command returns. */
function parseJson(result: RunResult, success: boolean): JsonResult {
  let json: JsonResult
  try {
    json = JSON.parse(result.stdout) as JsonResult
  } catch {
    throw new Error(`not one JSON object (exit ${result.code}):\n${output(result)}`)
  }

  expect(result.code, output(result)).to.equal(success ? 0 : 1)
  expect(json.success).to.equal(success)
  expect(json.platform).to.equal('linux')
  expect(json.message).to.be.a('string').and.not.equal('')
  expect(json.details).to.be.an('array')
  for (const line of json.details) expect(line).to.be.a('string')
  return json
}

/** What install, start and restart report once the server answered: healthy, from the unit's MainPID. */
function expectServing(json: JsonResult, port: number, mainPid: number, waitSeconds = 30): void {
  expect(json.serving, JSON.stringify(json)).to.deep.include({url: `http://127.0.0.1:${port}/api/health`, healthy: true, pid: mainPid, waitSeconds})
  expect(json.serving!.elapsedMs).to.be.a('number').and.at.least(0)
}

/** The health answer's PID and the unit's MainPID, read right after a command returned. */
async function answeringPid(um: UserManager, port: number): Promise<{health: number | undefined; main: number}> {
  const [health, main] = await Promise.all([healthPid(port, 2000), um.mainPid(SERVER)])
  return {health, main}
}

/** A copy of the built package whose package.json says `version`; returns its `bin/run.js`. */
function copyWithVersion(version: string): {entry: string; dir: string} {
  const dir = mkdtempSync(join(tmpdir(), 'amp-distro-drift-'))
  for (const part of ['bin', 'dist', 'templates', 'oclif.manifest.json']) cpSync(join(REPO, part), join(dir, part), {recursive: true})
  writeFileSync(join(dir, 'package.json'), JSON.stringify({...(JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as object), version}, null, 2))
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'))
  return {entry: join(dir, 'bin', 'run.js'), dir}
}

/** Collects a child's stdout as it arrives. */
function collect(child: ChildProcess): () => string {
  let text = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk
  })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk
  })
  return () => text
}

/** The PIDs in the server's listening lines, in the order they appear. */
function listeningPids(text: string): number[] {
  return [...text.matchAll(/listening on http:\/\/\S+ \(PID (\d+)\)/g)].map((match) => Number(match[1]))
}

function exitOf(child: ChildProcess): Promise<{code: number | null; signal: NodeJS.Signals | null}> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({code: child.exitCode, signal: child.signalCode})
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({code, signal})))
}

describeSystemd('service commands with nothing installed', (manager) => {
  for (const command of ['start', 'stop', 'restart', 'logs']) {
    it(`service ${command} exits 1 naming ${INSTALL_HINT}, as text and as JSON`, async () => {
      const um = manager()
      const text = await cli(um, ['service', command])
      expect(text.code, output(text)).to.equal(1)
      expect(output(text)).to.contain(INSTALL_HINT)
      expect(hasStackTrace(output(text)), output(text)).to.equal(false)

      const json = parseJson(await cli(um, ['service', command, '--json']), false)
      expect([json.message, ...json.details].join('\n')).to.contain(INSTALL_HINT)
      expect(existsSync(join(unitDir(um), SERVER))).to.equal(false)
    })
  }

  it('service status and service uninstall succeed', async () => {
    const um = manager()
    const status = parseJson(await cli(um, ['service', 'status', '--json']), true)
    expect(status).to.deep.include({installed: false})
    expect((await cli(um, ['service', 'status'])).code).to.equal(0)
    parseJson(await cli(um, ['service', 'uninstall', '--json']), true)
    expect((await cli(um, ['service', 'uninstall'])).code).to.equal(0)
  })
})

describeSystemd('service install with the port held by another program', (manager) => {
  let holder: Server | undefined

  after(() => release(holder))

  it('exits 1 within --wait plus a few seconds, names the port, no stack trace, and the units stay installed', async () => {
    const um = manager()
    const port = await freePort()
    holder = await holdPort(port)
    const began = performance.now()
    const result = await cli(um, ['service', 'install', '--port', String(port), '--wait', '5'])
    const elapsedMs = performance.now() - began
    expect(result.code, output(result)).to.equal(1)
    expect(output(result)).to.contain(`127.0.0.1:${port}`)
    expect(output(result)).to.match(/in use/)
    expect(hasStackTrace(output(result)), output(result)).to.equal(false)
    // The bound the command promises (--wait), not a speed: CLI start-up and the diagnosis fit in 15 s more.
    expect(elapsedMs).to.be.below((5 + 15) * 1000)

    for (const unit of [SERVER, WATCHDOG]) {
      expect(existsSync(join(unitDir(um), unit)), unit).to.equal(true)
      expect((await um.show(unit, ['LoadState'])).LoadState).to.equal('loaded')
      expect((await um.systemctl('is-enabled', unit)).stdout.trim()).to.equal('enabled')
    }
  })

  it('as JSON, re-run over the failing install: success false, serving not healthy, the wait bounded by --wait even with a long restart delay, the port in the details', async function () {
    this.timeout(120_000)
    const um = manager()
    const port = holder!.address() as {port: number}
    // A restart delay far past --wait: a start job that waited for it (a blocking systemctl start of a unit in auto-restart) would outlast the bound.
    const dir = join(unitDir(um), `${SERVER}.d`)
    mkdirSync(dir, {recursive: true})
    writeFileSync(join(dir, 'long-restart-delay.conf'), '[Service]\nRestartSec=60\n')
    await systemctlOk(um, 'daemon-reload')
    let result: RunResult
    try {
      result = await cli(um, ['service', 'install', '--port', String(port.port), '--wait', '3', '--json'])
    } finally {
      rmSync(dir, {recursive: true, force: true})
      await systemctlOk(um, 'daemon-reload')
    }

    const json = parseJson(result, false)
    expect(json.serving).to.deep.include({url: `http://127.0.0.1:${port.port}/api/health`, healthy: false, waitSeconds: 3})
    // Measured by the command from its own start, so Node's start-up is not in it: --wait plus a few seconds at most.
    expect(json.serving!.elapsedMs).to.be.at.most((3 + 5) * 1000)
    expect(json.details.join('\n')).to.contain(`127.0.0.1:${port.port}`)
  })
})

describeSystemd('service restart, stop, start and logs on a real systemd user manager', function (manager) {
  let port: number
  const drift: {dir?: string} = {}

  before(async function () {
    this.timeout(120_000)
    port = await freePort()
    const um = manager()
    const json = parseJson(await cli(um, ['service', 'install', '--port', String(port), '--json']), true)
    const {health, main} = await answeringPid(um, port)
    expect(health).to.equal(main)
    expectServing(json, port, main)
    expect(json.serving!.version).to.equal(PACKAGE.version)
    await steadyWatchdog(um)
    // A watchdog that would act within seconds, so that "nothing brings them back" is a real check.
    await shortenWatchdogIntervals(um, 1, 3)
    await steadyWatchdog(um)
  })

  after(() => {
    if (drift.dir !== undefined) rmSync(drift.dir, {recursive: true, force: true})
  })

  it('install says how long the server took to answer, from the unit’s MainPID', async () => {
    const um = manager()
    const before = await um.mainPid(SERVER)
    const text = await cliOk(um, ['service', 'install', '--port', String(port)])
    const {health, main} = await answeringPid(um, port)
    expect(main).not.to.equal(before)
    expect(health).to.equal(main)
    expect(text).to.match(new RegExp(`answered from PID ${main} after \\d+\\.\\d s`))
    // The drop-in with the short intervals outlives a re-install.
    await steadyWatchdog(um)
  })

  it('restart (twice) returns once health answers from the new MainPID, a new PID each time, the watchdog restarted too', async () => {
    const um = manager()
    for (const json of [false, true]) {
      const before = await um.mainPid(SERVER)
      const watchdogBefore = await um.mainPid(WATCHDOG)
      const result = await cli(um, ['service', 'restart', ...(json ? ['--json'] : [])])
      const {health, main} = await answeringPid(um, port)
      expect(result.code, output(result)).to.equal(0)
      expect(main).to.be.above(0).and.not.equal(before)
      expect(health, 'health answered from the unit’s MainPID when restart returned').to.equal(main)
      if (json) {
        const parsed = parseJson(result, true)
        expectServing(parsed, port, main)
        expect(parsed.serving!.previousPid).to.equal(before)
      } else {
        expect(result.stdout).to.match(new RegExp(`answered from PID ${main} after \\d+\\.\\d s`))
      }

      await waitFor(async () => ((await um.mainPid(WATCHDOG)) || watchdogBefore) !== watchdogBefore, {
        timeoutMs: 15_000,
        what: 'the watchdog to run under a new PID after the restart',
      })
    }
  })

  it('six restarts in a row, past the start limit of 5 starts in 60 s, all succeed: the limit stops crash loops, not a person', async function () {
    this.timeout(120_000)
    const um = manager()
    for (let round = 0; round < 6; round++) {
      const before = await um.mainPid(SERVER)
      const json = parseJson(await cli(um, ['service', 'restart', '--json']), true)
      const {health, main} = await answeringPid(um, port)
      expect(main, `restart ${round + 1}`).not.to.equal(before)
      expect(health, `restart ${round + 1}`).to.equal(main)
      expectServing(json, port, main)
    }

    await steadyWatchdog(um)
  })

  it('restart --wait 0 returns once systemd accepted it, without a serving report', async () => {
    const um = manager()
    const json = parseJson(await cli(um, ['service', 'restart', '--wait', '0', '--json']), true)
    expect(json.serving).to.equal(undefined)
    await steadyServer(um, port)
    await steadyWatchdog(um)
  })

  it('stop: both units inactive, health refused, nothing brings them back over several watchdog intervals; a second stop exits 0', async function () {
    this.timeout(120_000)
    const um = manager()
    const json = parseJson(await cli(um, ['service', 'stop', '--json']), true)
    expect(json.serving).to.equal(undefined)
    for (const unit of [SERVER, WATCHDOG]) expect((await um.show(unit, ['ActiveState'])).ActiveState, unit).to.equal('inactive')
    expect(await accepts(port)).to.equal(false)

    // The watchdog checks every second and restarts after 3 s down: watch for four of its cycles.
    const until = Date.now() + 4 * (1 + 3) * 1000
    while (Date.now() < until) {
      const [server, watchdog] = await Promise.all([um.show(SERVER, ['ActiveState']), um.show(WATCHDOG, ['ActiveState'])])
      expect([server.ActiveState, watchdog.ActiveState]).to.deep.equal(['inactive', 'inactive'])
      expect(toolProcesses(um, 'serve')).to.deep.equal([])
      expect(await healthPid(port, 500)).to.equal(undefined)
      await new Promise((resolve) => setTimeout(resolve, 500))
    }

    // Stop is not uninstall: the files and the enablement stay.
    for (const unit of [SERVER, WATCHDOG]) {
      expect(existsSync(join(unitDir(um), unit)), unit).to.equal(true)
      expect((await um.systemctl('is-enabled', unit)).stdout.trim()).to.equal('enabled')
    }

    const again = await cli(um, ['service', 'stop'])
    expect(again.code, output(again)).to.equal(0)
    expect(again.stdout).to.match(/already stopped|not running/i)
  })

  it('status of a stopped service says stopped and how to start it', async () => {
    const um = manager()
    const status = await cli(um, ['service', 'status'])
    expect(status.code, output(status)).to.equal(0)
    expect(status.stdout).to.match(/\bstopped\b/)
    expect(output(status)).to.contain('amp-distro service start')
  })

  it('restart of a stopped service starts it', async () => {
    const um = manager()
    const json = parseJson(await cli(um, ['service', 'restart', '--json']), true)
    const {health, main} = await answeringPid(um, port)
    expect(health).to.equal(main)
    expectServing(json, port, main)
    await steadyWatchdog(um)
    parseJson(await cli(um, ['service', 'stop', '--json']), true)
  })

  it('start: healthy from the unit’s MainPID when it returns, the watchdog running; as text and as JSON', async () => {
    const um = manager()
    const text = await cli(um, ['service', 'start'])
    expect(text.code, output(text)).to.equal(0)
    const {health, main} = await answeringPid(um, port)
    expect(main).to.be.above(0)
    expect(health).to.equal(main)
    expect(text.stdout).to.match(new RegExp(`answered from PID ${main} after \\d+\\.\\d s`))
    expect((await um.show(WATCHDOG, ['ActiveState'])).ActiveState).to.be.oneOf(['active', 'activating'])

    // Starting what runs already changes nothing and still reports the server answering.
    const json = parseJson(await cli(um, ['service', 'start', '--json']), true)
    expectServing(json, port, main)
    expect(await um.mainPid(SERVER)).to.equal(main)
    await steadyWatchdog(um)
  })

  it('status shows the uptime and where the logs are', async () => {
    const status = await cli(manager(), ['service', 'status'])
    expect(status.code, output(status)).to.equal(0)
    expect(status.stdout).to.match(/uptime/i)
    expect(status.stdout).to.match(/Logs:\s+amp-distro service logs/)
  })

  it('logs --lines 200 holds the server’s listening line and the watchdog’s start, oldest first; --json has them as lines', async () => {
    const um = manager()
    const main = await um.mainPid(SERVER)
    const listening = `listening on http://127.0.0.1:${port} (PID ${main})`
    const watchdog = `Watchdog started (PID ${await um.mainPid(WATCHDOG)}`
    // journald takes the lines from the units' streams a moment after they were written.
    await waitFor(async () => (await um.journal(SERVER)).includes(listening), {timeoutMs: 10_000, what: 'the listening line in the journal'})
    const text = await cliOk(um, ['service', 'logs', '--lines', '200'])
    expect(text).to.contain(listening)
    expect(text).to.contain(watchdog)
    // Every start so far printed a listening line: they come in the order the servers started.
    const printed = listeningPids(text)
    expect(printed.length).to.be.at.least(2)
    expect(printed).to.deep.equal(listeningPids(await um.journal(SERVER)).slice(-printed.length))
    expect(printed.at(-1)).to.equal(main)

    const json = parseJson(await cli(um, ['service', 'logs', '--lines', '200', '--json']), true)
    expect(json.lines).to.be.an('array')
    expect(json.lines!.some((line) => line.text.includes(listening) && line.source === SERVER), JSON.stringify(json.lines)).to.equal(true)
    expect(json.lines!.some((line) => line.text.includes(watchdog) && line.source === WATCHDOG), JSON.stringify(json.lines)).to.equal(true)

    const few = await cliOk(um, ['service', 'logs', '--lines', '3'])
    expect(few.trimEnd().split('\n')).to.have.length(3)
  })

  it('logs --follow shows the lines of a restart made while it follows, and exits 0 on SIGTERM and on SIGINT (Ctrl-C)', async function () {
    this.timeout(120_000)
    const um = manager()
    const before = await um.mainPid(SERVER)
    const follow = um.spawn(process.execPath, [RUN_JS, 'service', 'logs', '--follow'])
    const seen = collect(follow)
    try {
      await waitFor(async () => seen().includes(`(PID ${before})`), {timeoutMs: 30_000, what: `the follow to print the running server’s lines:\n${seen()}`})
      await cliOk(um, ['service', 'restart'])
      const after = await um.mainPid(SERVER)
      expect(after).not.to.equal(before)
      await waitFor(async () => seen().includes(`listening on http://127.0.0.1:${port} (PID ${after})`), {
        timeoutMs: 30_000,
        what: `the follow to print the new server’s listening line:\n${seen()}`,
      })
      follow.kill('SIGTERM')
      expect(await exitOf(follow), seen()).to.deep.equal({code: 0, signal: null})
    } finally {
      follow.kill('SIGKILL')
    }

    const interrupted = um.spawn(process.execPath, [RUN_JS, 'service', 'logs', '--follow', '--lines', '1'])
    const printed = collect(interrupted)
    try {
      await waitFor(async () => printed().includes('\n'), {timeoutMs: 30_000, what: 'the second follow to print its first line'})
      interrupted.kill('SIGINT')
      expect(await exitOf(interrupted), printed()).to.deep.equal({code: 0, signal: null})
    } finally {
      interrupted.kill('SIGKILL')
    }
  })

  it('status reports the running server’s version next to this CLI’s, and warns to restart when they differ', async function () {
    this.timeout(120_000)
    const um = manager()
    const version = `${PACKAGE.version}-drift.1`
    const copy = copyWithVersion(version)
    drift.dir = copy.dir
    const installed = parseJson(await cli(um, ['service', 'install', '--port', String(port), '--json'], copy.entry), true)
    expect(installed.serving!.version).to.equal(version)

    const text = await cli(um, ['service', 'status'])
    expect(text.code, output(text)).to.equal(0)
    expect(output(text)).to.contain(version)
    expect(output(text)).to.contain(PACKAGE.version)
    expect(output(text)).to.contain('amp-distro service restart')
    const json = parseJson(await cli(um, ['service', 'status', '--json']), true)
    expect(json.warnings!.some((line) => line.includes(version) && line.includes('amp-distro service restart')), JSON.stringify(json.warnings)).to.equal(true)

    // The copy the units run is the version that runs: no drift from there.
    const fromCopy = parseJson(await cli(um, ['service', 'status', '--json'], copy.entry), true)
    expect(fromCopy.warnings!.some((line) => line.includes('amp-distro service restart')), JSON.stringify(fromCopy.warnings)).to.equal(false)
  })
})

describe('service logs when the journal holds nothing of the units', function () {
  this.timeout(120_000)
  const title = 'service logs when the journal holds nothing of the units'
  let um: UserManager | undefined

  before(async function () {
    try {
      // The harness's debug switch: the units write to the manager's tty, so journald gets none of their lines.
      um = await startUserManager({tty: true})
    } catch (error) {
      harnessUnavailable(this, title, (error as Error).message)
    }
  })

  after(async () => {
    await um?.stop()
  })

  it('says so and points at the files under ~/.amplifier/server', async () => {
    const port = await freePort()
    await cliOk(um!, ['service', 'install', '--port', String(port)])
    const result = await cli(um!, ['service', 'logs'])
    expect(hasStackTrace(output(result)), output(result)).to.equal(false)
    expect(output(result)).to.match(/journal/i)
    expect(output(result)).to.contain(join(um!.home, '.amplifier', 'server'))
    expect(output(result)).not.to.contain('listening on')
  })
})
