import {expect} from 'chai'
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {createServer as createHttpServer, type Server as HttpServer} from 'node:http'
import {dirname} from 'node:path'

import {pathsFor} from '../../../../src/lib/paths.js'
import {createSystemdBackend} from '../../../../src/lib/service/systemd/backend.js'
import {renderServerUnit, renderWatchdogUnit} from '../../../../src/lib/service/systemd/unit.js'
import type {Backend, Exec, LogLine, ServiceContext} from '../../../../src/lib/service/types.js'
import {cleanup, closeServer, freePort, holdPort, RUN_JS, tempHome} from '../../../helpers/cli.js'
import {FakeManager, journalEntry} from '../../../helpers/fake-systemctl.js'

const SERVER = 'amplifier-distro.service'
const WATCHDOG = 'amplifier-distro-watchdog.service'
const SOCKET = 'amplifier-distro.socket'

/** This process's name as the port owner lookup reads it. */
const ownerName = () => readFileSync(`/proc/${process.pid}/comm`, 'utf8').trim()

interface Setup {
  manager: FakeManager
  backend: Backend
  home: string
  port: number
}

/** A home with the units installed for `port` (the watchdog's too unless told), and a backend driving a fake manager. */
function setup(port: number, options: {watchdog?: boolean; install?: boolean; context?: Partial<ServiceContext>; wrap?: (exec: Exec) => Exec} = {}): Setup {
  const home = tempHome()
  const paths = pathsFor(home)
  const spec = {bin: RUN_JS, host: '127.0.0.1', port, path: `${dirname(process.execPath)}:/usr/bin:/bin`, home}
  if (options.install ?? true) {
    mkdirSync(paths.systemdUserDir, {recursive: true})
    writeFileSync(paths.systemdServerUnit, renderServerUnit(spec))
    if (options.watchdog ?? true) writeFileSync(paths.systemdWatchdogUnit, renderWatchdogUnit(spec))
  }

  const manager = new FakeManager()
  const backend = createSystemdBackend({
    home,
    env: {},
    uid: 1000,
    user: 'ada',
    exec: options.wrap ? options.wrap(manager.exec) : manager.exec,
    stream: manager.stream,
    version: '0.3.0',
    nodePath: process.execPath,
    resolveBinary: () => ({path: RUN_JS}),
    ...options.context,
  })
  return {manager, backend, home, port}
}

/** The systemctl calls, without the `systemctl --user` in front and without the reads. */
function actions(manager: FakeManager): string[] {
  return manager.calls.filter(([file, , verb]) => file === 'systemctl' && verb !== 'show').map((call) => call.slice(2).join(' '))
}

describe('systemd backend: start, stop, restart (fake systemctl, real health server)', () => {
  let http: HttpServer | undefined

  afterEach(async () => {
    await closeServer(http)
    http = undefined
    await cleanup()
  })

  /** Installs over the port of a real health endpoint that answers with the fake manager's main PID for the server, as the real server would. */
  async function healthySetup(options: Parameters<typeof setup>[1] = {}): Promise<Setup> {
    const answering: {manager?: FakeManager} = {}
    http = createHttpServer((_req, res) => {
      res.writeHead(200, {'content-type': 'application/json'})
      res.end(JSON.stringify({status: 'ok', version: '0.3.0', pid: answering.manager?.units[SERVER].MainPID ?? 0, uptimeSeconds: 3}))
    })
    await new Promise<void>((resolve) => http!.listen({host: '127.0.0.1', port: 0}, resolve))
    const result = setup((http.address() as {port: number}).port, options)
    answering.manager = result.manager
    return result
  }

  const notInstalled = [
    ['start', (b: Backend) => b.start({waitSeconds: 1})],
    ['stop', (b: Backend) => b.stop()],
    ['restart', (b: Backend) => b.restart({waitSeconds: 1})],
    ['show logs of', (b: Backend) => b.logs({lines: 5, follow: false, signal: new AbortController().signal, write() {}})],
  ] as const
  for (const [verb, run] of notInstalled) {
    it(`nothing installed: "${verb}" fails naming amp-distro service install, and runs nothing`, async () => {
      const {backend, manager} = setup(await freePort(), {install: false})
      const result = await run(backend)
      expect(result).to.deep.equal({
        success: false,
        platform: 'linux',
        message: `amplifier-distro service is not installed, so there is nothing to ${verb}.`,
        details: ['Install it: amp-distro service install'],
      })
      expect(manager.calls).to.deep.equal([])
    })
  }

  it('start: starts both units and returns once health answers from the main PID', async () => {
    const {backend, manager, port} = await healthySetup()
    const result = await backend.start({waitSeconds: 10})
    expect(actions(manager)).to.deep.equal([`reset-failed ${SERVER} ${WATCHDOG} ${SOCKET}`, `start --no-block ${SERVER} ${WATCHDOG}`])
    expect(result).to.deep.include({success: true, message: `Started ${SERVER} and ${WATCHDOG}.`})
    expect(result.serving).to.include({healthy: true, pid: 5000, url: `http://127.0.0.1:${port}/api/health`, waitSeconds: 10})
    expect(result.details.at(-1)).to.match(new RegExp(`^Healthy: http://127\\.0\\.0\\.1:${port}/api/health answered from PID 5000 after \\d+\\.\\d s\\.$`))
  })

  it('start: forgets a failed state first (a crash loop hit its start limit), then starts', async () => {
    const {backend, manager} = await healthySetup()
    manager.units[SERVER] = {ActiveState: 'failed', SubState: 'failed', Result: 'start-limit-hit', MainPID: 0}
    const result = await backend.start({waitSeconds: 10})
    expect(actions(manager)).to.deep.equal([`reset-failed ${SERVER} ${WATCHDOG} ${SOCKET}`, `start --no-block ${SERVER} ${WATCHDOG}`])
    expect(result.success).to.equal(true)
  })

  it('start --wait 0: returns once systemctl accepted, without asking health', async () => {
    const {backend, manager} = setup(await freePort())
    manager.serverComesUp = false
    const result = await backend.start({waitSeconds: 0})
    expect(result).to.deep.include({success: true, message: `Started ${SERVER} and ${WATCHDOG}.`})
    expect(result).to.not.have.property('serving')
  })

  it('start of a running service says so, and still checks its health', async () => {
    const {backend, manager} = await healthySetup()
    await manager.exec('systemctl', ['--user', 'start', SERVER, WATCHDOG])
    manager.calls.length = 0
    const result = await backend.start({waitSeconds: 10})
    expect(result).to.deep.include({success: true, message: 'amplifier-distro service was already running.'})
    expect(result.serving).to.include({healthy: true, pid: 5000})
  })

  it('start without a watchdog unit starts the server alone', async () => {
    const {backend, manager} = await healthySetup({watchdog: false})
    const result = await backend.start({waitSeconds: 10})
    expect(actions(manager)).to.deep.equal([`reset-failed ${SERVER} ${SOCKET}`, `start --no-block ${SERVER}`])
    expect(result.message).to.equal(`Started ${SERVER}.`)
  })

  it('stop: stops the server with its watchdog; a second stop succeeds and says it was stopped', async () => {
    const {backend, manager} = setup(await freePort())
    await manager.exec('systemctl', ['--user', 'start', SERVER, WATCHDOG])
    manager.calls.length = 0
    const first = await backend.stop()
    // The socket goes in the same stop job: no connection can start the server again.
    expect(actions(manager)).to.deep.equal([`stop ${SERVER} ${WATCHDOG} ${SOCKET}`])
    expect(first).to.deep.include({success: true, message: `Stopped ${SERVER}, ${WATCHDOG} and ${SOCKET}.`})
    for (const unit of [SERVER, WATCHDOG, SOCKET]) expect(manager.units[unit].ActiveState, unit).to.equal('inactive')

    manager.calls.length = 0
    const second = await backend.stop()
    expect(actions(manager)).to.deep.equal([])
    expect(second).to.deep.equal({
      success: true,
      platform: 'linux',
      message: 'amplifier-distro service is already stopped.',
      details: [`${SERVER}: inactive (dead)`, `${WATCHDOG}: inactive (dead)`, `${SOCKET}: inactive (dead)`, 'Start it: amp-distro service start'],
    })
  })

  it('restart: replaces the server (new main PID) and the running watchdog with it', async () => {
    const {backend, manager} = await healthySetup()
    await manager.exec('systemctl', ['--user', 'start', SERVER, WATCHDOG])
    manager.calls.length = 0
    const result = await backend.restart({waitSeconds: 10})
    expect(actions(manager)).to.deep.equal([`reset-failed ${SERVER} ${WATCHDOG} ${SOCKET}`, `restart --no-block ${SERVER}`, `start --no-block ${WATCHDOG}`])
    expect(result).to.deep.include({success: true, message: `Restarted ${SERVER} and ${WATCHDOG}.`})
    expect(result.serving).to.include({healthy: true, previousPid: 5000, pid: 5002})
    expect(manager.units[WATCHDOG].MainPID).to.equal(5003)
  })

  it('restart of a stopped service starts the server, then the watchdog', async () => {
    const {backend, manager} = await healthySetup()
    const result = await backend.restart({waitSeconds: 10})
    expect(actions(manager)).to.deep.equal([`reset-failed ${SERVER} ${WATCHDOG} ${SOCKET}`, `restart --no-block ${SERVER}`, `start --no-block ${WATCHDOG}`])
    expect(result).to.deep.include({success: true, message: `Started ${SERVER} and ${WATCHDOG} (the service was not running).`})
    expect(result.serving).to.not.have.property('previousPid')
    expect(manager.units[WATCHDOG].ActiveState).to.equal('active')
  })

  it('restart of a running server started five times within the minute is not stopped by the start limit', async () => {
    const {backend, manager} = await healthySetup()
    await manager.exec('systemctl', ['--user', 'start', SERVER, WATCHDOG])
    manager.starts[SERVER] = 5
    manager.calls.length = 0
    const result = await backend.restart({waitSeconds: 10})
    expect(actions(manager)[0]).to.equal(`reset-failed ${SERVER} ${WATCHDOG} ${SOCKET}`)
    expect(result).to.deep.include({success: true, message: `Restarted ${SERVER} and ${WATCHDOG}.`})
    expect(result.serving).to.include({healthy: true, previousPid: 5000})
  })

  it('a start systemd refuses outright (a unit it cannot load) is a failure that quotes systemd and says where to look', async () => {
    const {backend, manager} = setup(await freePort())
    manager.missing.add(WATCHDOG)
    const result = await backend.start({waitSeconds: 1})
    expect(result).to.deep.equal({
      success: false,
      platform: 'linux',
      message: `systemctl --user start --no-block ${SERVER} ${WATCHDOG} failed (exit 5).`,
      details: [`Failed to start ${WATCHDOG}: Unit ${WATCHDOG} not found.`, 'See why: amp-distro service status, and amp-distro service logs'],
    })
  })

  it('with no user manager, start, stop and restart fail saying so and change nothing', async () => {
    const {backend, manager} = setup(await freePort())
    manager.reachable = false
    for (const [verb, result] of [
      ['start', await backend.start({waitSeconds: 1})],
      ['stop', await backend.stop()],
      ['restart', await backend.restart({waitSeconds: 1})],
    ] as const) {
      expect(result.success).to.equal(false)
      expect(result.message).to.equal(`systemd user manager is not reachable; cannot ${verb} the service.`)
      expect(result.details[0]).to.equal('systemctl --user answered: Failed to connect to bus: No such file or directory')
    }

    expect(actions(manager)).to.deep.equal([])
  })

  const installOptions = (port: number, waitSeconds: number) => ({host: '127.0.0.1', port, watchdog: true, dryRun: false, waitSeconds})

  it('install: enables both units and returns once health answers from the new main PID', async () => {
    const {backend, manager, port} = await healthySetup({install: false})
    const result = await backend.install(installOptions(port, 10))
    expect(actions(manager)).to.deep.equal([`reset-failed ${SERVER} ${WATCHDOG} ${SOCKET}`, 'daemon-reload', `try-restart --no-block ${SERVER} ${WATCHDOG}`, `enable --now --no-block ${SERVER}`, `enable --now --no-block ${WATCHDOG}`])
    expect(result).to.deep.include({success: true, message: `Installed ${SERVER}, ${WATCHDOG} and ${SOCKET} (systemd user units).`})
    expect(result.serving).to.include({healthy: true, pid: 5000})
    expect(result.details.at(-1)).to.match(/^Healthy: .* answered from PID 5000 after \d+\.\d s\.$/)
  })

  it('install over a unit that hit its start limit forgets the failure first, so enable --now starts it', async () => {
    const {backend, manager, port} = await healthySetup()
    manager.units[SERVER] = {ActiveState: 'failed', SubState: 'failed', Result: 'start-limit-hit', MainPID: 0}
    const result = await backend.install(installOptions(port, 10))
    expect(actions(manager)).to.deep.equal([`reset-failed ${SERVER} ${WATCHDOG} ${SOCKET}`, 'daemon-reload', `try-restart --no-block ${SERVER} ${WATCHDOG}`, `enable --now --no-block ${SERVER}`, `enable --now --no-block ${WATCHDOG}`])
    expect(result.success).to.equal(true)
  })

  it('install over a running server started five times within the minute replaces it; a unit systemd has not loaded is not reset', async () => {
    const {backend, manager, port} = await healthySetup()
    await manager.exec('systemctl', ['--user', 'start', SERVER])
    manager.starts[SERVER] = 5
    manager.missing.add(WATCHDOG)
    manager.calls.length = 0
    const result = await backend.install({...installOptions(port, 10), watchdog: false})
    expect(actions(manager).filter((call) => call.startsWith('reset-failed'))).to.deep.equal([`reset-failed ${SERVER} ${SOCKET}`])
    expect(result.serving).to.include({healthy: true, previousPid: 5000})
  })

  it('install over a running server waits for the replacement, not the old process', async () => {
    const {backend, manager, port} = await healthySetup()
    await manager.exec('systemctl', ['--user', 'start', SERVER, WATCHDOG])
    const result = await backend.install(installOptions(port, 10))
    expect(result.serving).to.include({healthy: true, previousPid: 5000, pid: 5002})
  })

  it('install on WSL says that WSL stops its services once idle, and names vmIdleTimeout', async () => {
    const {backend, port} = await healthySetup({install: false, context: {osRelease: '5.15.153.1-microsoft-standard-WSL2'}})
    const result = await backend.install(installOptions(port, 0))
    expect(result.details.join('\n')).to.include('vmIdleTimeout (milliseconds the VM may stay idle, 60000 by default) under [wsl2] in %UserProfile%\\.wslconfig')
  })

  describe('time-out with the port held by a real listener', () => {
    it('install: the socket cannot listen, so it ends long before --wait, with exit 1 naming the port and its owner; the units stay installed and enabled', async () => {
      const {port} = await holdPort()
      const {backend, manager, home} = setup(port, {install: false})
      manager.portTaken = true
      const result = await backend.install(installOptions(port, 30))
      expect(result.success).to.equal(false)
      expect(result.message).to.equal(`The server did not answer http://127.0.0.1:${port}/api/health within 30 s after install.`)
      expect(result.serving!.elapsedMs).to.be.below(30_000)
      expect(result.details[0]).to.equal(`Supervisor: the server is inactive (dead) (${SERVER}); its socket is failed (resources) (${SOCKET}).`)
      // The listener holding the port is this very test process.
      expect(result.details).to.include(`Port: 127.0.0.1:${port} is in use by ${ownerName()} (PID ${process.pid}), so the server cannot listen there.`)
      expect(result.details.at(-1)).to.equal('The service stays installed; once the cause is fixed: amp-distro service restart')
      const paths = pathsFor(home)
      expect([paths.systemdServerUnit, paths.systemdWatchdogUnit, paths.systemdSocketUnit].map((file) => existsSync(file))).to.deep.equal([true, true, true])
      expect(actions(manager).filter((call) => /^(disable|stop)/.test(call))).to.deep.equal([])
    })

    it('restart of a server that fails for good (exit status 78) ends at once, not after --wait', async () => {
      const {backend, manager} = setup(await freePort())
      manager.serverComesUp = false
      manager.serverFailsForGood = true
      const result = await backend.restart({waitSeconds: 30})
      expect(result.success).to.equal(false)
      expect(result.details[0]).to.equal(`Supervisor: the server is failed (exit-code) (${SERVER}).`)
      expect(result.serving!.elapsedMs).to.be.below(30_000)
    })

    for (const command of ['start', 'restart'] as const) {
      it(`${command} --wait 1 without a socket (an install from before it): exit 1 with the unit's state, the port and its owner, the server's last lines; units stay`, async () => {
        const {port} = await holdPort()
        const {backend, manager, home} = setup(port)
        manager.missing.add(SOCKET)
        manager.serverComesUp = false
        manager.journal = [journalEntry(SERVER, 'amp-distro', 41, `Error: Cannot listen on 127.0.0.1:${port}: address already in use`, 1_796_000_000)]
        const result = await backend[command]({waitSeconds: 1})
        expect(result.success).to.equal(false)
        expect(result.message).to.equal(`The server did not answer http://127.0.0.1:${port}/api/health within 1 s after ${command}.`)
        expect(result.details.slice(0, 4)).to.deep.equal([
          `Supervisor: the server is activating (auto-restart) (${SERVER}).`,
          `Port: 127.0.0.1:${port} is in use by ${ownerName()} (PID ${process.pid}), so the server cannot listen there.`,
          `  See which program: ss -ltnp 'sport = :${port}'`,
          '  Stop that program, or install on another port: amp-distro service install --port <port>',
        ])
        expect(result.details[4]).to.equal('Last lines of the server log:')
        expect(result.details[5]).to.match(new RegExp(`^  \\S+ amp-distro\\[41\\]: Error: Cannot listen on 127\\.0\\.0\\.1:${port}: address already in use$`))
        expect(result.serving).to.include({healthy: false, waitSeconds: 1})
        expect(result.serving!.elapsedMs).to.be.at.least(1000)
        const journalCall = manager.calls.find(([file]) => file === 'journalctl')!
        expect(journalCall.slice(1, 5)).to.deep.equal(['--user-unit', SERVER, '--lines', '10'])
        const paths = pathsFor(home)
        expect([paths.systemdServerUnit, paths.systemdWatchdogUnit].map((file) => existsSync(file))).to.deep.equal([true, true])
        expect(actions(manager).some((call) => call.startsWith('disable') || call.startsWith('stop'))).to.equal(false)
      })
    }
  })
})

describe('systemd backend: logs (fake journalctl)', () => {
  afterEach(() => cleanup())

  const entries = [
    journalEntry(SERVER, 'amp-distro', 10, 'Amplifier distro server 0.3.0 listening on http://127.0.0.1:8400 (PID 10)', 1_796_000_000),
    journalEntry(WATCHDOG, 'amp-distro-watchdog', 11, 'INFO Watchdog started', 1_796_000_001),
  ]

  it('prints the last N lines of both units, oldest first, each from its unit, reading with --user-unit for both', async () => {
    const {backend, manager} = setup(await freePort())
    manager.journal = entries
    const lines: LogLine[] = []
    const result = await backend.logs({lines: 50, follow: false, signal: new AbortController().signal, write: (line) => lines.push(line)})
    expect(result).to.deep.equal({success: true, platform: 'linux', message: `2 lines of ${SERVER} and ${WATCHDOG} from the journal.`, details: []})
    expect(lines.map((line) => line.source)).to.deep.equal([SERVER, WATCHDOG])
    expect(lines[0].text).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d amp-distro\[10\]: Amplifier distro server 0\.3\.0 listening/)
    expect(manager.calls).to.deep.equal([
      [
        'journalctl',
        '--user-unit',
        SERVER,
        '--user-unit',
        WATCHDOG,
        '--lines',
        '50',
        '--output',
        'json',
        '--output-fields=MESSAGE,SYSLOG_IDENTIFIER,_PID,_SYSTEMD_USER_UNIT,USER_UNIT',
        '--all',
        '--quiet',
        '--no-pager',
      ],
    ])
  })

  it('says when the journal holds nothing, and points at the files under ~/.amplifier/server', async () => {
    const {backend, home} = setup(await freePort())
    const result = await backend.logs({lines: 50, follow: false, signal: new AbortController().signal, write() {}})
    const dir = pathsFor(home).serverDir
    expect(result).to.deep.equal({
      success: true,
      platform: 'linux',
      message: `The journal holds no lines of ${SERVER} and ${WATCHDOG}.`,
      details: [
        'Either no journald runs here, or the lines are kept in a journal your user may not read (members of the systemd-journal or adm group may read all of it).',
        `The files under ${dir}/ keep what the watchdog did: ${dir}/watchdog.log, and ${dir}/crash.log for servers it restarted on its own.`,
      ],
    })
  })

  /** Follows with `--lines lines` over the journal `entries`, while `arrival` comes in, until `count` lines have been printed (the signal then fires). */
  async function followUntil(manager: FakeManager, backend: Backend, lines: number, count: number, arrival: ReturnType<typeof journalEntry>) {
    manager.journal = entries
    const printed: LogLine[] = []
    const stop = new AbortController()
    const following = backend.logs({
      lines,
      follow: true,
      signal: stop.signal,
      write(line) {
        printed.push(line)
        if (printed.length === count) stop.abort()
      },
    })
    await new Promise((resolve) => setImmediate(resolve))
    manager.arrive(arrival)
    return {result: await following, printed}
  }

  it('--follow: prints the last lines, then follows after the last cursor until the signal fires', async () => {
    const {backend, manager} = setup(await freePort())
    const {result, printed} = await followUntil(manager, backend, 1, 2, journalEntry(SERVER, 'amp-distro', 12, 'Amplifier distro server stopped.', 1_796_000_002))
    expect(result.success).to.equal(true)
    expect(printed.map((line) => line.text.replace(/^\S+ /, ''))).to.deep.equal(['amp-distro-watchdog[11]: INFO Watchdog started', 'amp-distro[12]: Amplifier distro server stopped.'])
    const follow = manager.calls.find((call) => call.includes('--follow'))!
    expect(follow).to.include('--after-cursor=c1796000001')
    expect(follow).to.not.include('--lines')
  })

  it('--follow on an empty journal says so at once instead of waiting in silence', async () => {
    const {backend, manager} = setup(await freePort())
    const result = await backend.logs({lines: 50, follow: true, signal: new AbortController().signal, write() {}})
    expect(result.message).to.equal(`The journal holds no lines of ${SERVER} and ${WATCHDOG}.`)
    expect(manager.calls.filter((call) => call.includes('--follow'))).to.deep.equal([])
  })

  it('--follow --lines 0 follows only new lines', async () => {
    const {backend, manager} = setup(await freePort())
    const {result, printed} = await followUntil(manager, backend, 0, 1, entries[1])
    expect(result.success).to.equal(true)
    expect(printed.map((line) => line.source)).to.deep.equal([WATCHDOG])
    expect(manager.calls.map((call) => call.slice(5, 7))).to.deep.equal([['--lines', '0']])
  })
})
