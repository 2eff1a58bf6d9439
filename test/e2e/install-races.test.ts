import {expect} from 'chai'
import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {pathsFor} from '../../src/lib/paths.js'
import {readPid} from '../../src/lib/pidfile.js'
import {
  cliIn,
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
} from './fault-helpers.js'
import {freePort} from '../helpers/cli.js'
import {describeSystemd, type UserManager, waitFor} from './systemd-harness.js'

/** Rounds per race: each one starts both commands at the same moment, so an interleaving is likely in some of them. */
const ROUNDS = 4
const INSTALL_FLAGS = ['--no-watchdog']
const UNINSTALL_STEP_MS = 250

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Checks the one consistent installed state: the unit file of a single generation (its port one of
 * `ports`), accepted by `systemd-analyze verify`, enabled and active, running that generation's
 * command and answering on its port, with no temporary files or lock left behind. Returns the port.
 */
async function expectInstalled(manager: UserManager, ports: number[]): Promise<number> {
  const dir = unitDir(manager)
  const file = join(dir, SERVER)
  const port = unitPort(file)
  expect(ports, `port in ${file}`).to.include(port)
  expect(existsSync(join(dir, WATCHDOG)), 'a watchdog unit from --no-watchdog installs').to.equal(false)
  expect(strayUnitFiles(manager), 'temporary files in the unit folder').to.deep.equal([])
  expect(existsSync(pathsFor(manager.home, manager.env).serviceLock), 'service lock left behind').to.equal(false)
  expect(await manager.run('systemd-analyze', ['verify', '--user', file])).to.deep.equal({code: 0, stdout: '', stderr: ''})
  expect((await manager.systemctl('is-enabled', SERVER)).stdout.trim()).to.equal('enabled')

  const {ActiveState, MainPID} = await manager.show(SERVER, ['ActiveState', 'MainPID'])
  expect(ActiveState).to.equal('active')
  expect(processPort(Number(MainPID)), `port of the running server (PID ${MainPID})`).to.equal(port)
  await waitFor(async () => isHealthy(port!), {timeoutMs: 30_000, what: `health on port ${port}`})
  for (const other of ports.filter((p) => p !== port)) expect(await isHealthy(other), `health on the losing port ${other}`).to.equal(false)
  // The only server is the unit's main process, and it owns the PID file.
  expect(toolProcesses(manager, 'serve')).to.deep.equal([Number(MainPID)])
  await waitFor(async () => readPid(pathsFor(manager.home, manager.env).serverPid) === Number(MainPID), {
    timeoutMs: 10_000,
    what: `server.pid to name ${MainPID}`,
  })
  return port!
}

/** Checks the one clean uninstalled state: no unit files or links, units unknown to systemd, no server, no run-time files. */
async function expectUninstalled(manager: UserManager, ports: number[]): Promise<void> {
  const dir = unitDir(manager)
  for (const unit of [SERVER, WATCHDOG]) {
    expect(existsSync(join(dir, unit)), `${unit} file`).to.equal(false)
    expect(existsSync(join(dir, 'default.target.wants', unit)), `${unit} link`).to.equal(false)
    expect(await manager.show(unit, ['LoadState', 'ActiveState'])).to.deep.equal({LoadState: 'not-found', ActiveState: 'inactive'})
  }

  expect(strayUnitFiles(manager), 'temporary files in the unit folder').to.deep.equal([])
  expect(toolProcesses(manager, 'serve'), 'server processes').to.deep.equal([])
  expect(leftoverRuntimeFiles(manager), 'run-time files').to.deep.equal([])
  for (const port of ports) expect(await isHealthy(port), `health on port ${port}`).to.equal(false)
}

describeSystemd('service install races on a real systemd user manager', (ctx) => {
  afterEach(async () => {
    await cliIn(ctx(), 'service', 'uninstall')
  })

  it('two installs started together end in one generation, valid, active and healthy', async function () {
    this.timeout(ROUNDS * 90_000)
    const manager = ctx()
    const winners: number[] = []
    // The first round installs from nothing; later ones race two re-installs over a running service.
    for (let round = 0; round < ROUNDS; round++) {
      const ports = [await freePort(), await freePort()]
      const results = await Promise.all(ports.map((port) => cliIn(manager, 'service', 'install', '--port', String(port), ...INSTALL_FLAGS)))
      for (const result of results) expectOk(result, `install in round ${round}`)
      winners.push(ports.indexOf(await expectInstalled(manager, ports)))
    }

    console.log(`      install vs install: the generation that stayed, by round (0 = first started): ${winners.join(' ')}`)
  })

  it('install racing uninstall ends fully installed or fully uninstalled', async function () {
    this.timeout(ROUNDS * 90_000)
    const manager = ctx()
    const outcomes: string[] = []
    for (let round = 0; round < ROUNDS; round++) {
      const before = await freePort()
      expectOk(await cliIn(manager, 'service', 'install', '--port', String(before), ...INSTALL_FLAGS), 'install before the race')
      await waitFor(async () => isHealthy(before), {timeoutMs: 30_000, what: `health on port ${before} before the race`})

      const port = await freePort()
      // install does more before it reaches the lock than uninstall; delaying uninstall by a growing
      // step moves the race across that gap, so both orders occur.
      const [installed, uninstalled] = await Promise.all([
        cliIn(manager, 'service', 'install', '--port', String(port), ...INSTALL_FLAGS),
        delay(round * UNINSTALL_STEP_MS).then(() => cliIn(manager, 'service', 'uninstall')),
      ])
      expectOk(installed, `install in round ${round}`)
      expectOk(uninstalled, `uninstall in round ${round}`)
      if (existsSync(join(unitDir(manager), SERVER))) {
        expect(await expectInstalled(manager, [port])).to.equal(port)
        expect(await isHealthy(before), `health on the uninstalled port ${before}`).to.equal(false)
        outcomes.push('installed')
        expectOk(await cliIn(manager, 'service', 'uninstall'), 'uninstall after the round')
      } else {
        await expectUninstalled(manager, [before, port])
        outcomes.push('uninstalled')
      }
    }

    console.log(`      install vs uninstall: outcome by round: ${outcomes.join(' ')}`)
  })
})
