/**
 * The watchdog as installed, with its default intervals (no drop-in), under a real systemd user
 * manager: a hung server (SIGSTOP) is replaced within a minute, and a server that is only busy
 * (its event loop blocked 2 s at a time, over and over) is never restarted.
 */
import {expect} from 'chai'
import {mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {DEFAULT_CHECK_INTERVAL_S, DEFAULT_RESTART_AFTER_S, pathsFor} from '../../src/lib/paths.js'
import {freePort} from '../helpers/cli.js'
import {healthPid} from '../helpers/processes.js'
import {startLoad, summarize} from './client-load.js'
import {cli, expectOk, SERVER, steadyServer, steadyWatchdog, systemctlOk, unitDir, WATCHDOG} from './service-fixtures.js'
import {describeSystemd, isRunning, waitFor} from './systemd-harness.js'

const BUSY_FIXTURE = new URL('fixtures/busy-server.mjs', import.meta.url).pathname
/** The requirement for the installed defaults: a hung server answers again from a new process within a minute. */
const HANG_REPLACED_WITHIN_MS = 60_000
/** How long the busy server is watched: the start-up grace, restart-after twice over, and a few checks more. */
const BUSY_WATCH_MS = (2 * DEFAULT_RESTART_AFTER_S + 4 * DEFAULT_CHECK_INTERVAL_S) * 1000

describeSystemd('the installed watchdog with its default intervals', (ctx) => {
  let port: number

  before(async function () {
    this.timeout(120_000)
    port = await freePort()
    expectOk(await cli(ctx(), ['service', 'install', '--port', String(port)]))
    await steadyServer(ctx(), port)
  })

  it(`runs with the defaults: a check every ${DEFAULT_CHECK_INTERVAL_S} s, a restart after ${DEFAULT_RESTART_AFTER_S} s down`, async () => {
    const um = ctx()
    const pid = await steadyWatchdog(um)
    const log = pathsFor(um.home, um.env).watchdogLog
    await waitFor(async () => readFileSync(log, 'utf8').includes(`PID ${pid}, systemd`), {timeoutMs: 30_000, what: 'the watchdog to log its start'})
    const started = readFileSync(log, 'utf8')
      .split('\n')
      .findLast((line) => line.includes(`PID ${pid}, systemd`))
    expect(started).to.include(`every ${DEFAULT_CHECK_INTERVAL_S} s, restart after ${DEFAULT_RESTART_AFTER_S} s down`)
  })

  it('never restarts a server that blocks its event loop for 2 s at a time, over and over', async function () {
    this.timeout(BUSY_WATCH_MS + 120_000)
    const um = ctx()
    const dropIns = `${join(unitDir(um), SERVER)}.d`
    mkdirSync(dropIns, {recursive: true})
    writeFileSync(join(dropIns, 'busy.conf'), `[Service]\nExecStart=\nExecStart="${process.execPath}" "${BUSY_FIXTURE}"\n`)
    await systemctlOk(um, 'daemon-reload')
    expectOk(await cli(um, ['service', 'restart', '--wait', '60']), 'restart into the busy server')
    const server = await um.mainPid(SERVER)
    const watchdog = await steadyWatchdog(um)
    const {NRestarts} = await um.show(WATCHDOG, ['NRestarts'])
    // No client load besides the watchdog's own checks: a server that takes one connection per 2 s block
    // cannot keep up with more, which would be an overload, not a busy server.
    const until = performance.now() + BUSY_WATCH_MS
    while (performance.now() < until) {
      expect(await um.mainPid(SERVER), 'the busy server').to.equal(server)
      expect(await um.mainPid(WATCHDOG), 'the watchdog').to.equal(watchdog)
      await sleep(2000)
    }

    const log = readFileSync(pathsFor(um.home, um.env).watchdogLog, 'utf8')
    const unhealthy = log.split('\n').filter((line) => line.includes('Server unhealthy')).length
    console.log(`      busy server watched ${BUSY_WATCH_MS / 1000} s: ${unhealthy} unhealthy checks logged, no restart`)
    expect(await um.show(WATCHDOG, ['NRestarts']), 'systemd restarts of the watchdog').to.deep.equal({NRestarts})
    expect(isRunning(server)).to.equal(true)
    expect(log).to.not.match(new RegExp(`restart attempt|Stopped the server \\(PID ${server}\\)|Killed the server \\(PID ${server}\\)`))

    rmSync(dropIns, {recursive: true, force: true})
    await systemctlOk(um, 'daemon-reload')
    expectOk(await cli(um, ['service', 'restart']), 'restart into the real server')
  })

  it('replaces a hung server (SIGSTOP) within a minute, refusing no connection meanwhile', async function () {
    this.timeout(HANG_REPLACED_WITHIN_MS + 120_000)
    const um = ctx()
    const hung = await steadyServer(um, port)
    await steadyWatchdog(um)
    // The watchdog's start-up grace ends with the first answer it gets: let it have one.
    await sleep((DEFAULT_CHECK_INTERVAL_S + 2) * 1000)
    const load = startLoad(port, {everyMs: 100, maxInFlight: 700, timeoutMs: HANG_REPLACED_WITHIN_MS + 10_000})
    const at = performance.now()
    process.kill(hung, 'SIGSTOP')
    let replaced: number
    try {
      await waitFor(
        async () => {
          const answered = await healthPid(port, 1000)
          return answered !== undefined && answered !== hung
        },
        {timeoutMs: HANG_REPLACED_WITHIN_MS, intervalMs: 250, what: `a new server within ${HANG_REPLACED_WITHIN_MS / 1000} s of the hang`},
      )
      replaced = performance.now() - at
    } finally {
      await sleep(1000)
      await load.stop()
      if (isRunning(hung)) process.kill(hung, 'SIGKILL')
    }

    const summary = summarize(load.samples)
    console.log(`      hang with the default intervals: a new server answered after ${(replaced / 1000).toFixed(1)} s; ${JSON.stringify(summary)}`)
    expect(summary).to.deep.include({refused: 0, other: {}})
  })
})
