/**
 * Which failures systemd restarts and which it must not, on a real systemd user manager: a
 * configuration that can never work fails at once (queued connections do not start it again), a
 * crash loop ends at the start limit with the port closed, and a watchdog whose server systemd gave
 * up stops exiting and waits.
 */
import {expect} from 'chai'
import {readFileSync, writeFileSync} from 'node:fs'
import {type Server} from 'node:http'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {EXIT_CONFIG} from '../../src/lib/errors.js'
import {directive, parseUnit, RESTART_SEC, SOCKET_UNIT} from '../../src/lib/service/drivers/systemd/unit.js'
import {accepts, freePort, hasStackTrace} from '../helpers/cli.js'
import {cli, cliOk, holdPort, release, SERVER, shortenWatchdogIntervals, steadyServer, systemctlOk, unitDir, WATCHDOG} from './service-fixtures.js'
import {describeSystemd, type UserManager, waitFor} from './systemd-harness.js'

/** The watchdog's journal lines written by process `pid`. */
async function watchdogLines(um: UserManager, pid: number): Promise<string[]> {
  return (await um.journal(WATCHDOG, {output: 'json'}))
    .split('\n')
    .filter(Boolean)
    .map((text) => JSON.parse(text) as {MESSAGE?: string; _PID?: string})
    .filter((entry) => entry._PID === String(pid) && typeof entry.MESSAGE === 'string')
    .map((entry) => entry.MESSAGE!)
}

describeSystemd('a server unit hand-edited to a configuration that can never work', (manager) => {
  it(`ends failed right away with NRestarts=0 (exit ${EXIT_CONFIG} is in RestartPreventExitStatus=); status names the line to fix; restart ends at once`, async function () {
    this.timeout(120_000)
    const um = manager()
    const port = await freePort()
    await cliOk(um, ['service', 'install', '--port', String(port)])
    const file = join(unitDir(um), SERVER)
    const original = readFileSync(file, 'utf8')
    expect(directive(parseUnit(original), 'Service', 'RestartPreventExitStatus')?.split(/\s+/)).to.include(String(EXIT_CONFIG))
    const edited = original.replace(`"--port" "${port}"`, '"--port" "99999"')
    expect(edited, 'the unit names its port as "--port" "<port>"').not.to.equal(original)
    writeFileSync(file, edited)
    await systemctlOk(um, 'daemon-reload')
    await um.systemctl('restart', SERVER)

    const failed = await waitFor(
      async () => {
        const shown = await um.show(SERVER, ['ActiveState', 'Result', 'NRestarts', 'ExecMainStatus'])
        return shown.ActiveState === 'failed' ? shown : undefined
      },
      {timeoutMs: 15_000, intervalMs: 100, what: 'the edited server unit to fail'},
    )
    expect(failed).to.deep.equal({ActiveState: 'failed', Result: 'exit-code', NRestarts: '0', ExecMainStatus: String(EXIT_CONFIG)})
    // Longer than a restart delay: still failed, still never restarted. The socket closed with it
    // (StopWhenUnneeded=), so a connection cannot start the server again either.
    await sleep((RESTART_SEC + 2) * 1000)
    expect(await accepts(port), 'a connection to the port').to.equal(false)
    await sleep(500)
    expect(await um.show(SERVER, ['ActiveState', 'NRestarts'])).to.deep.equal({ActiveState: 'failed', NRestarts: '0'})
    expect(await um.show(SOCKET_UNIT, ['ActiveState'])).to.deep.equal({ActiveState: 'inactive'})

    const status = await cli(um, ['service', 'status'])
    expect(hasStackTrace(status.stdout + status.stderr), status.stderr).to.equal(false)
    expect(status.code, status.stdout + status.stderr).to.equal(0)
    const lines = edited.split('\n')
    const at = lines.findIndex((line) => line.startsWith('ExecStart='))
    expect(lines[at]).to.contain('"--port" "99999"')
    expect(status.stderr).to.include(`Warning: ${SERVER} exited with status ${EXIT_CONFIG}: its command line or configuration can never work`)
    expect(status.stderr).to.include(`  The line to fix: ${file}, line ${at + 1}: ${lines[at]}\n`)

    // A restart cannot help: it ends as soon as systemd shows the unit failed again, long before --wait.
    const restart = await cli(um, ['service', 'restart', '--wait', '60', '--json'])
    expect(restart.code, restart.stdout + restart.stderr).to.equal(1)
    const result = JSON.parse(restart.stdout) as {details: string[]; serving: {healthy: boolean; waitSeconds: number; elapsedMs: number}}
    expect(result.details[0]).to.equal(`Supervisor: the server is failed (exit-code) (${SERVER}).`)
    expect(result.details.join('\n')).not.to.include('in use by another program')
    expect(result.serving).to.include({healthy: false, waitSeconds: 60})
    expect(result.serving.elapsedMs).to.be.below(30_000)
  })
})

describeSystemd('a server that crashes again and again (kill -9 as soon as it runs)', (manager) => {
  it('hits its start limit: the server and then its socket fail, closing the port; status says how to recover, and service start does', async function () {
    this.timeout(120_000)
    const um = manager()
    const port = await freePort()
    await cliOk(um, ['service', 'install', '--port', String(port)])
    await steadyServer(um, port)
    const kills: number[] = []
    await waitFor(
      async () => {
        const {ActiveState, MainPID} = await um.show(SERVER, ['ActiveState', 'MainPID'])
        if (ActiveState === 'failed') return true
        const pid = Number(MainPID)
        if (pid > 0 && !kills.includes(pid)) {
          kills.push(pid)
          process.kill(pid, 'SIGKILL')
        }

        return false
      },
      {timeoutMs: 60_000, intervalMs: 20, what: 'the server unit to hit its start limit'},
    )
    // systemd 252 keeps the last Result (signal) on the server; the socket tells the start limit.
    expect((await um.show(SERVER, ['ActiveState'])).ActiveState).to.equal('failed')
    expect(
      await waitFor(async () => {
        const socket = await um.show(SOCKET_UNIT, ['ActiveState', 'Result'])
        return socket.ActiveState === 'failed' ? socket : undefined
      }, {timeoutMs: 15_000, what: 'the socket to fail'}),
    ).to.deep.equal({ActiveState: 'failed', Result: 'service-start-limit-hit'})
    expect(await accepts(port), 'the port once the socket failed').to.equal(false)

    const status = await cli(um, ['service', 'status'])
    expect(status.stderr).to.include(`Warning: ${SOCKET_UNIT} failed (service-start-limit-hit): the server crashed too often, so systemd closed the port.`)
    expect(status.stderr).to.include(`  or: systemctl --user reset-failed ${SERVER} ${SOCKET_UNIT}, then systemctl --user start ${SERVER}`)

    await cliOk(um, ['service', 'start'])
    await steadyServer(um, port)
    expect((await um.show(SOCKET_UNIT, ['ActiveState'])).ActiveState).to.equal('active')
    await cliOk(um, ['service', 'uninstall'])
  })
})

describeSystemd('the watchdog once systemd gave the server up (its socket could not take the port)', (manager) => {
  let holder: Server | undefined

  after(() => release(holder))

  it('logs once that systemd gave up, with what to do, and stops exiting; the socket stays failed', async function () {
    this.timeout(300_000)
    const um = manager()
    const port = await freePort()
    holder = await holdPort(port)
    await cliOk(um, ['service', 'install', '--port', String(port), '--wait', '0'])
    const checkInterval = 1
    const restartAfter = 3
    await shortenWatchdogIntervals(um, checkInterval, restartAfter)
    await waitFor(async () => (await um.show(SOCKET_UNIT, ['ActiveState'])).ActiveState === 'failed', {
      timeoutMs: 60_000,
      intervalMs: 250,
      what: 'the socket to fail on the port that is taken',
    })
    // The watchdog systemd started with the last attempt first has its start-up grace (restart-after, here), then restart-after down, then a check.
    await sleep((2 * restartAfter + checkInterval + 2) * 1000)
    const watchdog = await um.show(WATCHDOG, ['ActiveState', 'MainPID', 'NRestarts'])
    const server = await um.show(SERVER, ['NRestarts'])
    const pid = Number(watchdog.MainPID)
    expect(watchdog.ActiveState).to.equal('active')
    expect(pid).to.be.above(0)
    const said = (await watchdogLines(um, pid)).filter((line) => /failed/i.test(line))
    expect(said, 'the watchdog’s lines about the failed server').to.have.length.at.least(1)
    expect((await watchdogLines(um, pid)).join('\n')).to.contain('amp-distro service')

    const until = Date.now() + 4 * (checkInterval + restartAfter) * 1000
    while (Date.now() < until) {
      expect(await um.show(SOCKET_UNIT, ['ActiveState'])).to.deep.equal({ActiveState: 'failed'})
      expect(await um.show(SERVER, ['ActiveState'])).to.deep.equal({ActiveState: 'inactive'})
      expect(await um.mainPid(WATCHDOG)).to.equal(pid)
      await sleep(500)
    }

    expect(await um.show(WATCHDOG, ['ActiveState', 'MainPID', 'NRestarts'])).to.deep.equal(watchdog)
    expect(await um.show(SERVER, ['NRestarts'])).to.deep.equal(server)
    expect((await watchdogLines(um, pid)).filter((line) => /failed/i.test(line)), 'no repeated failure lines').to.deep.equal(said)
  })
})
