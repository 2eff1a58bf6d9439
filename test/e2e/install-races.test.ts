import {expect} from 'chai'
import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {pathsFor} from '../../src/lib/paths.js'
import {readPid} from '../../src/lib/process/pidfile.js'
import {SOCKET_UNIT} from '../../src/lib/service/drivers/systemd/unit.js'
import {freePort} from '../helpers/cli.js'
import {
  cli,
  expectOk,
  isHealthy,
  leftoverRuntimeFiles,
  processPort,
  SERVER,
  strayUnitFiles,
  toolProcesses,
  unitDir,
  unitPort,
  WATCHDOG,
} from './service-fixtures.js'
import {describeSystemd, type UserManager, waitFor} from './systemd-harness.js'

/** Rounds per race: each one starts both commands at the same moment, so an interleaving is likely in some of them. */
const ROUNDS = 4
/**
 * How much later the second command of a mixed race starts than the first, by round (negative: the
 * first starts later). Which one reaches the lock first depends on how long each takes to load;
 * sweeping the offset across that gap makes both orders occur, every offset well inside the time the
 * first one holds the lock.
 */
const OFFSETS_MS = [-400, -200, 0, 200, 400]

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(ms, 0)))

/** The unit's main PID once it is active; the watchdog may still be starting right after an install. */
function activePid(manager: UserManager, unit: string): Promise<number> {
  return waitFor(
    async () => {
      const {ActiveState, MainPID} = await manager.show(unit, ['ActiveState', 'MainPID'])
      return ActiveState === 'active' && Number(MainPID) > 0 ? Number(MainPID) : undefined
    },
    {timeoutMs: 30_000, what: `${unit} to be active`},
  )
}

/**
 * Checks the one consistent installed state: the unit files of a single generation (the same port,
 * one of `ports`; the watchdog's only when `watchdog`), accepted by `systemd-analyze verify`, enabled
 * and active, each running that generation's command, the server answering on its port, one process
 * of each kind owning its PID file, and no temporary files or lock left behind. Returns the port.
 */
async function expectInstalled(manager: UserManager, ports: number[], watchdog = true): Promise<number> {
  const dir = unitDir(manager)
  const paths = pathsFor(manager.home, manager.env)
  const files = watchdog ? [join(dir, SERVER), join(dir, WATCHDOG)] : [join(dir, SERVER)]
  const port = unitPort(files[0])
  expect(ports, `port in ${files[0]}`).to.include(port)
  if (watchdog) expect(unitPort(files[1]), `port in ${files[1]}`).to.equal(port)
  else {
    expect(existsSync(join(dir, WATCHDOG)), `${WATCHDOG} file`).to.equal(false)
    expect(await manager.show(WATCHDOG, ['LoadState', 'ActiveState'])).to.deep.equal({LoadState: 'not-found', ActiveState: 'inactive'})
    expect(toolProcesses(manager, 'watchdog'), 'watchdog processes').to.deep.equal([])
    expect(existsSync(paths.watchdogPid), 'watchdog.pid').to.equal(false)
  }

  expect(strayUnitFiles(manager), 'temporary files in the unit folder').to.deep.equal([])
  expect(existsSync(paths.serviceLock), 'service lock left behind').to.equal(false)
  expect(await manager.run('systemd-analyze', ['verify', '--user', ...files, join(dir, SOCKET_UNIT)])).to.deep.equal({code: 0, stdout: '', stderr: ''})
  // The socket listens on the port of the generation that won.
  expect((await manager.show(SOCKET_UNIT, ['Listen'])).Listen).to.equal(`127.0.0.1:${port} (Stream)`)

  const units = [[SERVER, 'serve', paths.serverPid] as const, [WATCHDOG, 'watchdog', paths.watchdogPid] as const]
  for (const [unit, kind, pidFile] of watchdog ? units : units.slice(0, 1)) {
    expect((await manager.systemctl('is-enabled', unit)).stdout.trim(), `${unit} enabled`).to.equal('enabled')
    const pid = await activePid(manager, unit)
    expect(processPort(pid), `port of the running ${unit} (PID ${pid})`).to.equal(port)
    await waitFor(async () => readPid(pidFile) === pid, {timeoutMs: 10_000, what: `${pidFile} to name ${pid}`})
    expect(toolProcesses(manager, kind), `${kind} processes`).to.deep.equal([pid])
  }

  await waitFor(async () => isHealthy(port!), {timeoutMs: 30_000, what: `health on port ${port}`})
  for (const other of ports.filter((p) => p !== port)) expect(await isHealthy(other), `health on the losing port ${other}`).to.equal(false)
  return port!
}

/** Checks the one clean uninstalled state: no unit files or links, units unknown to systemd, no server, no run-time files. */
async function expectUninstalled(manager: UserManager, ports: number[]): Promise<void> {
  const dir = unitDir(manager)
  for (const unit of [SERVER, WATCHDOG, SOCKET_UNIT]) {
    expect(existsSync(join(dir, unit)), `${unit} file`).to.equal(false)
    expect(existsSync(join(dir, 'default.target.wants', unit)), `${unit} link`).to.equal(false)
    expect(await manager.show(unit, ['LoadState', 'ActiveState'])).to.deep.equal({LoadState: 'not-found', ActiveState: 'inactive'})
  }

  expect(strayUnitFiles(manager), 'temporary files in the unit folder').to.deep.equal([])
  expect(toolProcesses(manager, 'serve'), 'server processes').to.deep.equal([])
  expect(toolProcesses(manager, 'watchdog'), 'watchdog processes').to.deep.equal([])
  expect(leftoverRuntimeFiles(manager), 'run-time files').to.deep.equal([])
  for (const port of ports) expect(await isHealthy(port), `health on port ${port}`).to.equal(false)
}

describeSystemd('service install races on a real systemd user manager', (ctx) => {
  afterEach(async () => {
    await cli(ctx(), ['service', 'uninstall'])
  })

  it('two installs started together end in one generation, valid, active and healthy', async function () {
    this.timeout(ROUNDS * 90_000)
    const manager = ctx()
    const winners: number[] = []
    // The first round installs from nothing; later ones race two re-installs over a running service.
    for (let round = 0; round < ROUNDS; round++) {
      const ports = [await freePort(), await freePort()]
      const results = await Promise.all(ports.map((port) => cli(manager, ['service', 'install', '--port', String(port)])))
      for (const result of results) expectOk(result, `install in round ${round}`)
      winners.push(ports.indexOf(await expectInstalled(manager, ports)))
    }

    console.log(`      install vs install: the generation that stayed, by round (0 = first started): ${winners.join(' ')}`)
  })

  it('install racing uninstall ends fully installed or fully uninstalled', async function () {
    this.timeout(OFFSETS_MS.length * 90_000)
    const manager = ctx()
    const outcomes: string[] = []
    for (let round = 0; round < OFFSETS_MS.length; round++) {
      const before = await freePort()
      expectOk(await cli(manager, ['service', 'install', '--port', String(before)]), 'install before the race')
      await waitFor(async () => isHealthy(before), {timeoutMs: 30_000, what: `health on port ${before} before the race`})

      const port = await freePort()
      const offset = OFFSETS_MS[round]
      const [installed, uninstalled] = await Promise.all([
        delay(-offset).then(() => cli(manager, ['service', 'install', '--port', String(port)])),
        delay(offset).then(() => cli(manager, ['service', 'uninstall'])),
      ])
      expectOk(installed, `install in round ${round}`)
      expectOk(uninstalled, `uninstall in round ${round}`)
      if (existsSync(join(unitDir(manager), SERVER))) {
        expect(await expectInstalled(manager, [port])).to.equal(port)
        expect(await isHealthy(before), `health on the uninstalled port ${before}`).to.equal(false)
        outcomes.push('installed')
        expectOk(await cli(manager, ['service', 'uninstall']), 'uninstall after the round')
      } else {
        await expectUninstalled(manager, [before, port])
        outcomes.push('uninstalled')
      }
    }

    console.log(`      install vs uninstall: outcome by uninstall offset: ${outcomes.map((outcome, i) => `${OFFSETS_MS[i]} ms ${outcome}`).join(', ')}`)
  })

  it('an install with the watchdog racing one without it ends in one whole install of either', async function () {
    this.timeout(OFFSETS_MS.length * 90_000)
    const manager = ctx()
    const outcomes: string[] = []
    for (let round = 0; round < OFFSETS_MS.length; round++) {
      const [withWatchdog, without] = [await freePort(), await freePort()]
      const offset = OFFSETS_MS[round]
      const results = await Promise.all([
        delay(-offset).then(() => cli(manager, ['service', 'install', '--port', String(withWatchdog)])),
        delay(offset).then(() => cli(manager, ['service', 'install', '--port', String(without), '--no-watchdog'])),
      ])
      for (const result of results) expectOk(result, `install in round ${round}`)
      const watchdog = existsSync(join(unitDir(manager), WATCHDOG))
      expect(await expectInstalled(manager, [watchdog ? withWatchdog : without], watchdog)).to.equal(watchdog ? withWatchdog : without)
      outcomes.push(watchdog ? 'with watchdog' : 'without')
    }

    console.log(`      install vs install --no-watchdog: outcome by offset: ${outcomes.map((outcome, i) => `${OFFSETS_MS[i]} ms ${outcome}`).join(', ')}`)
  })
})
