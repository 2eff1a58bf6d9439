import {expect} from 'chai'
import {existsSync, mkdirSync, writeFileSync} from 'node:fs'
import {createServer, type Server} from 'node:net'

import {pathsFor} from '../../src/lib/paths.js'
import {portIsFree} from '../../src/lib/watchdog/restart-strategy.js'
import {serverStopDeps, stopFromPidFile} from '../../src/lib/process/stop-pid-file.js'
import {cleanup, exitOf, freePort, RUN_JS, type Running, start, tempHome, waitFor} from '../helpers/cli.js'
import {alive, healthPid, signal, standaloneEnv, startUnrelated, stateOf, writePidFile} from '../helpers/processes.js'

describe('stopping the server named in server.pid (real processes)', function () {
  this.timeout(60_000)

  let home: string
  const pidFile = () => pathsFor(home).serverPid

  before(function () {
    if (process.platform !== 'linux') this.skip()
  })

  beforeEach(() => {
    home = tempHome('amp-distro-stop-')
  })

  afterEach(cleanup)

  async function startServe(): Promise<Running> {
    const port = await freePort()
    const server = start(RUN_JS, ['serve', '--port', String(port)], {env: standaloneEnv(home)})
    await waitFor('serve to answer', async () => (await healthPid(port)) === server.child.pid, 20_000)
    return server
  }

  it('stops a running amp-distro serve with SIGTERM; the server removes its own PID file', async () => {
    const server = await startServe()
    const pid = server.child.pid!
    expect(await stopFromPidFile(pidFile(), serverStopDeps())).to.deep.equal({kind: 'stopped', pid})
    expect(alive(pid)).to.be.false
    expect((await server.finished()).code).to.equal(0)
    expect(existsSync(pidFile())).to.be.false
  })

  it('wakes a stopped (SIGSTOP) server with SIGCONT so it handles the SIGTERM cleanly instead of waiting for SIGKILL', async () => {
    const server = await startServe()
    const pid = server.child.pid!
    signal(pid, 'SIGSTOP')
    await waitFor('the server to be stopped', () => stateOf(pid) === 'T', 5000)
    // A grace period far longer than a clean shutdown takes: without SIGCONT the TERM stays pending and this ends in SIGKILL.
    expect(await stopFromPidFile(pidFile(), serverStopDeps(20_000))).to.deep.equal({kind: 'stopped', pid})
    expect((await server.finished()).code).to.equal(0)
    expect(existsSync(pidFile())).to.be.false
  })

  it('kills with SIGKILL a process that ignores SIGTERM for the whole grace period, and removes its PID file', async () => {
    const stubborn = start('-e', ["process.on('SIGTERM', () => {}); setInterval(() => {}, 1000); console.log('ready')"])
    const pid = stubborn.child.pid!
    await waitFor('the stubborn process to start', () => stubborn.stdout().includes('ready'), 10_000)
    writePidFile(pidFile(), pid)
    const deps = {...serverStopDeps(500), isOurs: (candidate: number) => candidate === pid}
    expect(await stopFromPidFile(pidFile(), deps)).to.deep.equal({kind: 'killed', pid})
    expect((await exitOf(stubborn.child)).signal).to.equal('SIGKILL')
    expect(existsSync(pidFile())).to.be.false
  })

  it('never signals an unrelated live process named in the PID file; removes the stale file', async () => {
    const unrelated = startUnrelated()
    const pid = unrelated.pid!
    writePidFile(pidFile(), pid)
    expect(await stopFromPidFile(pidFile(), serverStopDeps())).to.deep.equal({kind: 'stale', pid, alive: true})
    expect(alive(pid)).to.be.true
    expect(stateOf(pid)).to.not.equal('T')
    expect(unrelated.signalCode).to.equal(null)
    expect(existsSync(pidFile())).to.be.false
  })

  it('removes a PID file naming a process that is gone', async () => {
    const gone = start('-e', [''])
    await gone.finished()
    const pid = gone.child.pid!
    writePidFile(pidFile(), pid)
    expect(await stopFromPidFile(pidFile(), serverStopDeps())).to.deep.equal({kind: 'stale', pid, alive: false})
    expect(existsSync(pidFile())).to.be.false
  })

  it('treats a missing PID file or one with garbage as absent', async () => {
    expect(await stopFromPidFile(pidFile(), serverStopDeps())).to.deep.equal({kind: 'absent'})
    mkdirSync(pathsFor(home).serverDir, {recursive: true})
    writeFileSync(pidFile(), 'not a pid\n')
    expect(await stopFromPidFile(pidFile(), serverStopDeps())).to.deep.equal({kind: 'absent'})
  })
})

describe('portIsFree (real sockets)', () => {
  it('is false while something listens on the port and true once it has closed', async () => {
    const port = await freePort()
    const holder: Server = createServer()
    await new Promise<void>((resolve) => holder.listen({host: '127.0.0.1', port}, resolve))
    try {
      expect(await portIsFree('127.0.0.1', port)).to.be.false
    } finally {
      await new Promise((resolve) => holder.close(resolve))
    }

    expect(await portIsFree('127.0.0.1', port)).to.be.true
  })
})
