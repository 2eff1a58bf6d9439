import {expect} from 'chai'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {pathsFor} from '../../src/lib/paths.js'
import {SERVER_UNIT, SOCKET_UNIT, WATCHDOG_UNIT} from '../../src/lib/service/drivers/systemd/unit.js'
import {freePort, RUN_JS, waitFor as poll} from '../helpers/cli.js'
import {healthPid, type Launched, launch} from '../helpers/processes.js'
import {cli, cliOk, toolProcesses, shortenWatchdogIntervals, steadyServer, steadyWatchdog} from './service-fixtures.js'
import {describeSystemd, harnessUnavailable, isRunning, startUserManager, type UserManager, waitFor} from './systemd-harness.js'

/** An HTTP listener that has nothing to do with amp-distro: it answers every request `418 unrelated`. */
const UNRELATED_LISTENER = `
require('node:http').createServer((req, res) => { res.statusCode = 418; res.end('unrelated ' + process.pid) })
  .listen({host: '127.0.0.1', port: Number(process.env.PORT)})
`

async function unrelatedAnswer(port: number): Promise<string | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/api/health`, {signal: AbortSignal.timeout(2000)})
    return `${res.status} ${await res.text()}`
  } catch {
    return undefined
  }
}

describeSystemd('faults under systemd: a server that cannot start', function (manager) {
  let listener: Launched | undefined

  after(async () => {
    await listener?.stop()
  })

  it('fails once instead of thrashing (the socket cannot listen), status names the port and its holder, and the holder is untouched', async function () {
    this.timeout(180_000)
    const um = manager()
    const port = await freePort()
    listener = launch(process.execPath, ['-e', UNRELATED_LISTENER], {env: {...process.env, PORT: String(port)}})
    const expected = `418 unrelated ${listener.pid}`
    await poll('the unrelated listener', async () => (await unrelatedAnswer(port)) === expected, 10_000)

    // --wait 0: install returns once systemd accepted the units instead of reporting the held port.
    await cliOk(um, ['service', 'install', '--port', String(port), '--wait', '0'])
    const failed = await waitFor(
      async () => {
        const shown = await um.show(SOCKET_UNIT, ['ActiveState', 'Result'])
        return shown.ActiveState === 'failed' ? shown : undefined
      },
      {timeoutMs: 60_000, intervalMs: 250, what: 'the socket unit to fail'},
    )
    expect(failed.Result).to.equal('resources')
    expect(um.log()).to.contain('Address already in use')

    // Stays down: the server was never started, and nothing retries.
    await new Promise((resolve) => setTimeout(resolve, 3000))
    expect(await um.show(SERVER_UNIT, ['ActiveState', 'NRestarts'])).to.deep.equal({ActiveState: 'inactive', NRestarts: '0'})
    expect(await um.show(SOCKET_UNIT, ['ActiveState'])).to.deep.equal({ActiveState: 'failed'})
    expect(toolProcesses(um, 'serve')).to.deep.equal([])

    const status = await cli(um, ['service', 'status'])
    const text = status.stdout + status.stderr
    expect(text).to.contain(`Socket:   failed (resources) (${SOCKET_UNIT})`)
    expect(text).to.contain(`127.0.0.1:${port} is in use by node (PID ${listener.pid})`)
    expect(text).to.contain('Then: amp-distro service start')

    expect(isRunning(listener.pid), 'the unrelated listener is alive').to.equal(true)
    expect(await unrelatedAnswer(port)).to.equal(expected)
  })
})

describeSystemd('faults under systemd: the watchdog killed with SIGKILL', function (manager) {
  it('is restarted by systemd and resumes monitoring, and no second server appears', async function () {
    this.timeout(180_000)
    const um = manager()
    const port = await freePort()
    await cliOk(um, ['service', 'install', '--port', String(port)])
    await steadyServer(um, port)
    // Short intervals, so that "resumes monitoring" can be seen within the test.
    await shortenWatchdogIntervals(um, 1, 3)
    const server = await steadyServer(um, port)
    const killed = await steadyWatchdog(um)

    const counts: number[] = []
    process.kill(killed, 'SIGKILL')
    const restarted = await waitFor(
      async () => {
        counts.push(toolProcesses(um, 'serve').length)
        const pid = await steadyWatchdog(um, 1000).catch(() => undefined)
        return pid !== undefined && pid !== killed ? pid : undefined
      },
      {timeoutMs: 60_000, intervalMs: 200, what: 'systemd to restart the watchdog'},
    )
    expect(isRunning(killed)).to.equal(false)
    expect(await healthPid(port), 'the server was left alone').to.equal(server)
    expect(Math.max(...counts), 'serve processes while the watchdog was down').to.equal(1)

    // The new watchdog does its job: a hung server is replaced.
    process.kill(server, 'SIGSTOP')
    try {
      const replacement = await waitFor(
        async () => {
          counts.push(toolProcesses(um, 'serve').length)
          const pid = await healthPid(port, 500)
          return pid !== undefined && pid !== server ? pid : undefined
        },
        {timeoutMs: 90_000, intervalMs: 200, what: 'the restarted watchdog to replace the hung server'},
      )
      await waitFor(async () => !isRunning(server), {timeoutMs: 15_000, what: 'the hung server to be gone'})
      expect(await um.mainPid(SERVER_UNIT)).to.equal(replacement)
    } finally {
      if (isRunning(server)) process.kill(server, 'SIGKILL')
    }

    expect(Math.max(...counts), 'serve processes at any time').to.equal(1)
    expect(toolProcesses(um, 'serve')).to.have.length(1)
    expect(await um.mainPid(WATCHDOG_UNIT)).to.be.above(0)
    expect(restarted).to.not.equal(killed)
  })
})

describe('faults under systemd: a HOME with spaces, %, $, & and <', function () {
  this.timeout(180_000)
  let home: string | undefined
  let um: UserManager | undefined

  before(async function () {
    home = mkdtempSync(join(tmpdir(), 'amp distro 100% $HOME & <x> '))
    try {
      um = await startUserManager({home})
    } catch (error) {
      harnessUnavailable(this, this.test?.parent?.title ?? 'odd HOME', (error as Error).message)
    }
  })

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && um) console.log(`----- systemd user manager log -----\n${um.log()}\n----- end of log -----`)
  })

  after(async () => {
    await um?.stop()
    if (home) rmSync(home, {recursive: true, force: true})
  })

  it('installs, reports status and uninstalls, with the binary inside that HOME', async () => {
    if (!um || !home) throw new Error('no user manager')
    // Where npm's per-user prefix would put the launcher: the units then carry the odd path too.
    const bin = join(home, '.local', 'bin', 'amp-distro')
    mkdirSync(join(home, '.local', 'bin'), {recursive: true})
    symlinkSync(RUN_JS, bin)
    const port = await freePort()
    const url = `http://127.0.0.1:${port}/api/health`
    const paths = pathsFor(home, um.env)

    await cliOk(um, ['service', 'install', '--port', String(port)], bin)
    const server = await steadyServer(um, port)
    expect(readFileSync(`/proc/${server}/cmdline`, 'utf8').split('\0')[1]).to.equal(bin)
    expect(readFileSync(paths.systemdServerUnit, 'utf8')).to.contain('100%%')
    await steadyWatchdog(um)

    const status = await cliOk(um, ['service', 'status'], bin)
    expect(status).to.match(/Server:\s+active/)
    expect(status).to.match(/Watchdog:\s+active/)
    expect(status).to.contain(`${url} healthy`)

    await cliOk(um, ['service', 'uninstall'], bin)
    expect(existsSync(paths.systemdServerUnit)).to.equal(false)
    expect(existsSync(paths.systemdWatchdogUnit)).to.equal(false)
    await waitFor(async () => toolProcesses(um!, 'serve').length === 0, {timeoutMs: 20_000, what: 'no serve process left'})
    expect(await healthPid(port, 1000)).to.equal(undefined)
    expect(await cliOk(um, ['service', 'status'], bin)).to.match(/not installed/)
  })
})
