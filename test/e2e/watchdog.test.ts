import {expect} from 'chai'
import {existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {pathsFor} from '../../src/lib/paths.js'
import {isToolProcess} from '../../src/lib/process/procs.js'
import {freePort, RUN_JS} from '../helpers/cli.js'
import {healthPid} from '../helpers/processes.js'
import {describeSystemd, type RunResult, type UserManager, waitFor} from './systemd-harness.js'

const SERVER = 'amplifier-distro.service'
const WATCHDOG = 'amplifier-distro-watchdog.service'
/** The shortened watchdog timing the drop-in sets, in seconds. */
const CHECK_INTERVAL = 1
const RESTART_AFTER = 3

function expectOk(result: RunResult): RunResult {
  expect(result.code, `exit code; stderr: ${result.stderr}`).to.equal(0)
  return result
}

function environOf(pid: number): Record<string, string> {
  try {
    return Object.fromEntries(
      readFileSync(`/proc/${pid}/environ`, 'utf8')
        .split('\0')
        .filter((pair) => pair.includes('='))
        .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
    )
  } catch {
    return {}
  }
}

/** Every live `amp-distro serve` whose HOME is this manager's. */
function serversOf(home: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => isToolProcess(pid, 'serve') && environOf(pid).HOME === home)
}

async function unitState(manager: UserManager, unit: string): Promise<{active: string; pid: number}> {
  const {ActiveState, MainPID} = await manager.show(unit, ['ActiveState', 'MainPID'])
  return {active: ActiveState, pid: Number(MainPID)}
}

/** Waits until `unit` is active under a main PID other than `previous`; returns it. */
function newMainPid(manager: UserManager, unit: string, previous: number, timeoutMs = 60_000): Promise<number> {
  return waitFor(
    async () => {
      const {active, pid} = await unitState(manager, unit)
      return active === 'active' && pid > 0 && pid !== previous ? pid : undefined
    },
    {timeoutMs, what: `${unit} to run under a main PID other than ${previous}`},
  )
}

/** Waits until the server unit runs under a new main PID and that very process answers 200; returns the PID. */
function healthyUnderNewPid(manager: UserManager, port: number, previous: number): Promise<number> {
  return waitFor(
    async () => {
      const {active, pid} = await unitState(manager, SERVER)
      return active === 'active' && pid > 0 && pid !== previous && (await healthPid(port)) === pid ? pid : undefined
    },
    {timeoutMs: 90_000, what: `the server to answer 200 from a main PID other than ${previous}`},
  )
}

const seconds = (since: number) => ((performance.now() - since) / 1000).toFixed(1)

describeSystemd('watchdog under a real systemd user manager', (ctx) => {
  let port: number
  let server: number
  let watchdog: number

  before(async () => {
    port = await freePort()
  })

  beforeEach(async () => {
    // Each scenario restarts units; clear the start-rate counters so the limits of one do not spill into the next.
    await ctx().systemctl('reset-failed')
  })

  it('runs the installed watchdog with shortened intervals from a drop-in', async () => {
    const manager = ctx()
    expectOk(await manager.run(process.execPath, [RUN_JS, 'service', 'install', '--port', String(port)]))
    server = await newMainPid(manager, SERVER, 0)
    await waitFor(async () => (await healthPid(port)) === server, {timeoutMs: 30_000, what: 'the installed server to answer'})

    const unitDir = join(manager.home, '.config', 'systemd', 'user')
    const execStart = readFileSync(join(unitDir, WATCHDOG), 'utf8')
      .split('\n')
      .find((line) => line.startsWith('ExecStart='))
    expect(execStart, 'the installed watchdog unit has an ExecStart').to.be.a('string')
    const dropIns = join(unitDir, `${WATCHDOG}.d`)
    mkdirSync(dropIns, {recursive: true})
    // An empty ExecStart= clears the installed one; a second would be refused for Type=simple.
    writeFileSync(
      join(dropIns, 'fast.conf'),
      `[Service]\nExecStart=\n${execStart} "--check-interval" "${CHECK_INTERVAL}" "--restart-after" "${RESTART_AFTER}"\n`,
    )
    expectOk(await manager.systemctl('daemon-reload'))
    expectOk(await manager.systemctl('restart', WATCHDOG))
    watchdog = await waitFor(
      async () => {
        const {active, pid} = await unitState(manager, WATCHDOG)
        const argv = pid > 0 ? readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0') : []
        return active === 'active' && argv.includes('--restart-after') && argv.includes(String(RESTART_AFTER)) && pid
      },
      {timeoutMs: 30_000, what: 'the watchdog to run with the drop-in'},
    )
    expect(environOf(watchdog).INVOCATION_ID).to.match(/^[\da-f]{32}$/)
    await waitFor(async () => existsSync(pathsFor(manager.home).watchdogLog) && readFileSync(pathsFor(manager.home).watchdogLog, 'utf8').includes(`PID ${watchdog}, systemd`), {
      timeoutMs: 30_000,
      what: 'the watchdog to log its start in systemd mode',
    })
  })

  /** Sends `signal` to the server's main PID, waits for health from a new one, and logs how long that took. */
  async function replaceServer(manager: UserManager, signal: NodeJS.Signals, what: string): Promise<number> {
    const previous = server
    const sentAt = performance.now()
    process.kill(previous, signal)
    server = await healthyUnderNewPid(manager, port, previous)
    console.log(`      ${what}: ${seconds(sentAt)} s`)
    return previous
  }

  it('replaces a hung server (kill -STOP of its main PID) through systemd', async () => {
    const manager = ctx()
    const hung = await replaceServer(
      manager,
      'SIGSTOP',
      `hang under systemd (kill -STOP → 200 from a new MainPID, --check-interval ${CHECK_INTERVAL} --restart-after ${RESTART_AFTER}, installed RestartSec)`,
    )
    await waitFor(async () => !existsSync(`/proc/${hung}`), {timeoutMs: 15_000, what: 'the hung server to be gone'})
    // The watchdog handed the restart to systemd: it exited 1 and was started again.
    watchdog = await newMainPid(manager, WATCHDOG, watchdog)
    const log = readFileSync(pathsFor(manager.home).watchdogLog, 'utf8')
    // Under systemd a server that stayed down is killed at once: a clean exit would not be restarted and would close the socket.
    expect(log).to.include(`Killed the server (PID ${hung})`)
    expect(log).to.include('Exiting with status 1 so that systemd restarts the watchdog')
    // Under a supervisor the watchdog never starts a server itself (that would write crash.log).
    expect(existsSync(pathsFor(manager.home).crashLog)).to.be.false
    expect(serversOf(manager.home)).to.deep.equal([server])
  })

  it('gets a crashed server (kill -9) back through systemd, with one server only', async () => {
    const manager = ctx()
    await replaceServer(manager, 'SIGKILL', 'crash under systemd (kill -9 → 200 from a new MainPID, installed RestartSec)')
    // PartOf= restarts the watchdog along with the server; give it time to settle and look again.
    watchdog = await newMainPid(manager, WATCHDOG, 0)
    await new Promise((resolve) => setTimeout(resolve, (RESTART_AFTER + 2) * 1000))
    expect(serversOf(manager.home)).to.deep.equal([server])
    expect(existsSync(pathsFor(manager.home).crashLog)).to.be.false
  })

  it('kill -9 of the watchdog: systemd restarts it and no second server appears', async () => {
    const manager = ctx()
    const killed = watchdog
    process.kill(killed, 'SIGKILL')
    watchdog = await newMainPid(manager, WATCHDOG, killed)
    // Several check intervals of the new watchdog, past its restart-after.
    await new Promise((resolve) => setTimeout(resolve, (RESTART_AFTER + 3) * 1000))
    expect((await unitState(manager, WATCHDOG)).pid).to.equal(watchdog)
    expect((await unitState(manager, SERVER)).pid).to.equal(server)
    expect(await healthPid(port)).to.equal(server)
    expect(serversOf(manager.home)).to.deep.equal([server])
    expect(existsSync(pathsFor(manager.home).crashLog)).to.be.false
  })

  it('a manual systemctl stop of the server stops the watchdog too, and nothing starts the server again', async () => {
    const manager = ctx()
    expectOk(await manager.systemctl('stop', SERVER))
    expect((await unitState(manager, WATCHDOG)).active).to.equal('inactive')
    // Long enough for a watchdog left running to notice (restart-after), exit 1, be restarted
    // (RestartSec) and pull the server back in through Wants=.
    const windowMs = (RESTART_AFTER + 5 + 7) * 1000
    const until = performance.now() + windowMs
    while (performance.now() < until) {
      expect(await healthPid(port, 500)).to.equal(undefined)
      expect((await unitState(manager, SERVER)).active).to.equal('inactive')
      expect((await unitState(manager, WATCHDOG)).active).to.equal('inactive')
      await new Promise((resolve) => setTimeout(resolve, 500))
    }

    expect(serversOf(manager.home)).to.deep.equal([])
    expectOk(await manager.run(process.execPath, [RUN_JS, 'service', 'uninstall']))
  })
})
