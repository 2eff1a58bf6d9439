import {expect} from 'chai'
import {existsSync, readFileSync} from 'node:fs'
import {get} from 'node:http'
import {join} from 'node:path'
import {performance} from 'node:perf_hooks'

import {pathsFor} from '../../src/lib/paths.js'
import {readPid} from '../../src/lib/process/pidfile.js'
import {RESTART_SEC} from '../../src/lib/service/drivers/systemd/unit.js'
import {freePort} from '../helpers/cli.js'
import {type Sample, startLoad, summarize, timeToNewPid} from './client-load.js'
import {cli, expectOk, isHealthy, leftoverRuntimeFiles, SERVER, toolProcesses, unitDir, WATCHDOG} from './service-fixtures.js'
import {describeSystemd, type UserManager, waitFor} from './systemd-harness.js'

/**
 * A kill every 30 s means at most 3 starts of the server in any 60 s window, well inside its start
 * limit of 5 per 60 s: systemd must never give up on it during the soak.
 */
const KILL_EVERY_MS = 30_000
/** Enough for two kills, the fewest that can show a drift. */
const MIN_SOAK_SECONDS = 90

/** How long the soak runs: AMP_DISTRO_SOAK_SECONDS, 600 (ten minutes) unless set. */
function soakSeconds(value: string | undefined): number {
  if (value === undefined || value === '') return 600
  const seconds = Number(value)
  if (!Number.isInteger(seconds) || seconds < MIN_SOAK_SECONDS) {
    throw new Error(`AMP_DISTRO_SOAK_SECONDS must be a whole number of seconds, at least ${MIN_SOAK_SECONDS}, not ${JSON.stringify(value)}`)
  }

  return seconds
}

const SOAK_SECONDS = soakSeconds(process.env.AMP_DISTRO_SOAK_SECONDS)
/** The client load: a new connection every 20 ms (test/e2e/client-load.ts). */
const CONNECT_EVERY_MS = 20
const REQUEST_TIMEOUT_MS = 10_000
/** How long the test waits for health after a kill before it fails (not a target: bench:recovery measures that). */
const RECOVERY_WAIT_MS = RESTART_SEC * 1000 + 25_000
/** Start-up settles before the RSS of a recovered server is sampled. */
const SETTLE_MS = 2000
/** Late RSS samples may exceed early ones by this factor plus this many KiB before it counts as a drift. */
const RSS_TOLERANCE = {factor: 1.2, kib: 4096}

interface Kill {
  pid: number
  at: number
  recoveredAt: number
  newPid: number
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(ms, 0)))

function health(port: number): Promise<{pid?: number; error?: string}> {
  return new Promise((resolve) => {
    const req = get({host: '127.0.0.1', port, path: '/api/health', agent: false, timeout: REQUEST_TIMEOUT_MS}, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () => {
        if (res.statusCode !== 200) return resolve({error: `HTTP ${res.statusCode}`})
        try {
          const pid = (JSON.parse(body) as {pid?: unknown}).pid
          resolve(typeof pid === 'number' ? {pid} : {error: `no pid in ${body}`})
        } catch {
          resolve({error: `not JSON: ${body}`})
        }
      })
      res.on('error', (error: NodeJS.ErrnoException) => resolve({error: error.code ?? error.message}))
    })
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), {code: 'timeout'})))
    req.on('error', (error: NodeJS.ErrnoException) => resolve({error: error.code ?? error.message}))
  })
}

/** Resident set size of a live process, in KiB. */
function rssKib(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!match) throw new Error(`no VmRSS for PID ${pid}`)
  return Number(match[1])
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** Median of the first and of the last third of the samples (at least one sample each). */
function earlyAndLate(samples: number[]): {early: number; late: number} {
  const third = Math.max(1, Math.floor(samples.length / 3))
  return {early: median(samples.slice(0, third)), late: median(samples.slice(-third))}
}

function expectNoDrift(what: string, samples: number[]): void {
  expect(samples.length, `${what}: samples`).to.be.at.least(2)
  const {early, late} = earlyAndLate(samples)
  expect(late, `${what}: late median ${late} KiB against early median ${early} KiB (samples ${samples.join(' ')})`).to.be.at.most(
    early * RSS_TOLERANCE.factor + RSS_TOLERANCE.kib,
  )
}

const mib = (kib: number) => (kib / 1024).toFixed(1)

/** The watchdog unit's main PID, once it runs as the only watchdog process and owns watchdog.pid. */
async function expectOneWatchdog(manager: UserManager): Promise<number> {
  const pid = await waitFor(
    async () => {
      const {ActiveState, MainPID} = await manager.show(WATCHDOG, ['ActiveState', 'MainPID'])
      const main = Number(MainPID)
      return ActiveState === 'active' && main > 0 && readPid(pathsFor(manager.home, manager.env).watchdogPid) === main ? main : undefined
    },
    {timeoutMs: 30_000, what: 'the watchdog to run and own watchdog.pid'},
  )
  expect(toolProcesses(manager, 'watchdog'), 'watchdog processes').to.deep.equal([pid])
  return pid
}

/** The server's main PID once the unit is active and that PID answers health itself. */
async function runningServer(manager: UserManager, port: number, previous: number): Promise<number> {
  return waitFor(
    async () => {
      const {ActiveState, MainPID} = await manager.show(SERVER, ['ActiveState', 'MainPID'])
      const pid = Number(MainPID)
      if (ActiveState !== 'active' || pid === 0 || pid === previous) return undefined
      return (await health(port)).pid === pid ? pid : undefined
    },
    {timeoutMs: 30_000, what: `the server to run and answer under a PID other than ${previous}`},
  )
}

describeSystemd('soak: steady health requests and periodic kill -9 of the server under systemd, watchdog installed', (ctx) => {
  it(`recovers from every kill, keeps its memory flat, and leaves nothing behind (${SOAK_SECONDS} s)`, async function () {
    this.timeout(SOAK_SECONDS * 1000 + 300_000)
    const manager = ctx()
    const port = await freePort()
    expectOk(await cli(manager, ['service', 'install', '--port', String(port)]), 'install')
    const first = await runningServer(manager, port, 0)
    let pid = first
    await sleep(SETTLE_MS)
    const rssAfterRecovery = [rssKib(pid)]
    const rssBeforeKill: number[] = []
    const kills: Kill[] = []
    const watchdogs = new Set([await expectOneWatchdog(manager)])

    const load = startLoad(port, {everyMs: CONNECT_EVERY_MS, timeoutMs: REQUEST_TIMEOUT_MS})
    const began = performance.now()
    const end = began + SOAK_SECONDS * 1000
    let answers: Sample[] = []
    try {
      for (let next = began + KILL_EVERY_MS; next < end; next = kills.at(-1)!.at + KILL_EVERY_MS) {
        await sleep(next - performance.now())
        expect(await manager.mainPid(SERVER), 'main PID before a kill').to.equal(pid)
        expect(toolProcesses(manager, 'serve'), 'server processes before a kill').to.deep.equal([pid])
        await expectOneWatchdog(manager)
        rssBeforeKill.push(rssKib(pid))

        const at = performance.now()
        process.kill(pid, 'SIGKILL')
        const killed = pid
        pid = await waitFor(
          async () => {
            const answer = await health(port)
            return answer.pid !== undefined && answer.pid !== killed ? answer.pid : undefined
          },
          {timeoutMs: RECOVERY_WAIT_MS, intervalMs: 100, what: `health from a server other than the killed PID ${killed}`},
        )
        kills.push({pid: killed, at, recoveredAt: performance.now(), newPid: pid})
        expect(await runningServer(manager, port, killed), 'the unit main PID after recovery').to.equal(pid)
        await sleep(SETTLE_MS)
        expect(toolProcesses(manager, 'serve'), 'server processes after a recovery').to.deep.equal([pid])
        watchdogs.add(await expectOneWatchdog(manager))
        rssAfterRecovery.push(rssKib(pid))
      }
    } finally {
      answers = await load.stop()
    }

    const {NRestarts, ActiveState} = await manager.show(SERVER, ['NRestarts', 'ActiveState'])
    expect(ActiveState).to.equal('active')
    // systemd restarted the server once per kill: no restart was missed, none came extra.
    expect(Number(NRestarts), 'systemd restarts of the server').to.equal(kills.length)
    // The watchdog never restarted the server on its own: it never exited for systemd to bring both back.
    expect(Number((await manager.show(WATCHDOG, ['NRestarts'])).NRestarts), 'systemd restarts of the watchdog').to.equal(0)
    expect(kills.length, 'kills during the soak').to.be.at.least(Math.floor(SOAK_SECONDS / (KILL_EVERY_MS / 1000)) - 1)

    // The socket keeps the port open across every kill: no connection is refused. The killed process takes the
    // requests it had accepted with it: at most one per kill is reset. Nothing fails while no server was down.
    const summary = summarize(answers)
    expect(summary.refused, 'refused connections').to.equal(0)
    expect(summary.other, 'requests failing otherwise').to.deep.equal({})
    for (const kill of kills) {
      const reset = answers.filter((answer) => answer.error !== undefined && answer.end >= kill.at && answer.start <= kill.recoveredAt)
      expect(reset.length, `requests reset by the kill of PID ${kill.pid}`).to.be.at.most(1)
    }

    const unexplained = answers.filter((answer) => answer.error !== undefined && !kills.some((kill) => answer.end >= kill.at && answer.start <= kill.recoveredAt))
    expect(unexplained.map((answer) => answer.error), 'requests failing while no server was down').to.deep.equal([])
    const servers = [first, ...kills.map((kill) => kill.newPid)]
    const lifetimes = servers.map((server, i) => ({pid: server, from: kills[i - 1]?.at ?? 0, to: kills[i]?.at ?? Number.POSITIVE_INFINITY}))
    const strangers = answers.filter(
      (answer) => answer.pid !== undefined && !lifetimes.some((life) => life.pid === answer.pid && answer.end >= life.from && answer.start <= life.to),
    )
    expect(strangers, 'answers from a server other than the unit main process of their time').to.deep.equal([])
    const ok = answers.filter((answer) => answer.pid !== undefined).length
    expect(ok, 'answered requests').to.be.at.least((SOAK_SECONDS * 1000 / CONNECT_EVERY_MS) * 0.5)

    // From each kill to the first answer from a new server, as the client load saw it (reported, not asserted).
    const recovery = kills.map((kill) => Math.round(timeToNewPid(answers, kill.at, kill.pid) ?? kill.recoveredAt - kill.at))
    console.log(
      [
        `      soak ${SOAK_SECONDS} s: ${answers.length} requests, ${ok} answered, ${summary.refused} refused, ${summary.reset} reset, slowest answer ${summary.slowestMs} ms`,
        `      ${kills.length} kills; a new server answered after ms: ${recovery.join(' ')} (min ${Math.min(...recovery)} median ${Math.round(median(recovery))} max ${Math.max(...recovery)}; RestartSec ${RESTART_SEC} s)`,
        `      ${watchdogs.size} watchdog processes in turn (restarted along with the server, PartOf=)`,
        `      RSS MiB after each recovery: ${rssAfterRecovery.map(mib).join(' ')}`,
        `      RSS MiB before each kill:    ${rssBeforeKill.map(mib).join(' ')}`,
      ].join('\n'),
    )
    expectNoDrift('RSS after recovery', rssAfterRecovery)
    expectNoDrift('RSS before a kill', rssBeforeKill)

    expectOk(await cli(manager, ['service', 'uninstall']), 'uninstall')
    expect(await manager.show(SERVER, ['LoadState', 'ActiveState'])).to.deep.equal({LoadState: 'not-found', ActiveState: 'inactive'})
    expect(await manager.show(WATCHDOG, ['LoadState', 'ActiveState'])).to.deep.equal({LoadState: 'not-found', ActiveState: 'inactive'})
    expect(await isHealthy(port)).to.equal(false)
    expect(leftoverRuntimeFiles(manager), 'PID and lock files after uninstall').to.deep.equal([])
    expect(toolProcesses(manager, 'serve'), 'server processes after uninstall').to.deep.equal([])
    expect(toolProcesses(manager, 'watchdog'), 'watchdog processes after uninstall').to.deep.equal([])
    expect(existsSync(join(unitDir(manager), SERVER)), 'server unit file after uninstall').to.equal(false)
  })
})
