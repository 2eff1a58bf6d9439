import {expect} from 'chai'
import {existsSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createServer, type Server} from 'node:net'

import {pathsFor} from '../../src/lib/paths.js'
import {writePid} from '../../src/lib/pidfile.js'
import {portIsFree} from '../../src/lib/restart.js'
import {serverStopDeps, stopFromPidFile} from '../../src/lib/stop.js'
import {alive, cliEnv, freePort, healthPid, launch, pollUntil, requireBuild, RUN_JS, type Running, signal, tempHome} from '../support/real-processes.js'

/** The one-letter state of a process (field 3 of /proc/<pid>/stat): S, R, T (stopped), Z… */
function stateOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
}

describe('stopping the server named in server.pid (real processes)', function () {
  this.timeout(60_000)

  let home: string
  let launched: Running[]
  const pidFile = () => pathsFor(home).serverPid

  before(function () {
    if (process.platform !== 'linux') this.skip()
    requireBuild()
  })

  beforeEach(() => {
    home = tempHome('amp-distro-stop-')
    launched = []
  })

  afterEach(async () => {
    await Promise.all(launched.map((running) => running.stop(1000)))
    rmSync(home, {recursive: true, force: true})
  })

  async function startServe(): Promise<Running> {
    const port = await freePort()
    const server = launch(process.execPath, [RUN_JS, 'serve', '--port', String(port)], {env: cliEnv(home)})
    launched.push(server)
    await pollUntil(async () => (await healthPid(port)) === server.pid, 20_000, 'serve to answer')
    return server
  }

  it('stops a running amp-distro serve with SIGTERM; the server removes its own PID file', async () => {
    const server = await startServe()
    expect(await stopFromPidFile(pidFile(), serverStopDeps())).to.deep.equal({kind: 'stopped', pid: server.pid})
    expect(alive(server.pid)).to.be.false
    expect(await server.exited).to.equal(0)
    expect(existsSync(pidFile())).to.be.false
  })

  it('wakes a stopped (SIGSTOP) server with SIGCONT so it handles the SIGTERM cleanly instead of waiting for SIGKILL', async () => {
    const server = await startServe()
    signal(server.pid, 'SIGSTOP')
    await pollUntil(() => stateOf(server.pid) === 'T', 5000, 'the server to be stopped')
    // A grace period far longer than a clean shutdown takes: without SIGCONT the TERM stays pending and this ends in SIGKILL.
    const outcome = await stopFromPidFile(pidFile(), serverStopDeps(20_000))
    expect(outcome).to.deep.equal({kind: 'stopped', pid: server.pid})
    expect(await server.exited).to.equal(0)
    expect(existsSync(pidFile())).to.be.false
  })

  it('kills with SIGKILL a process that ignores SIGTERM for the whole grace period, and removes its PID file', async () => {
    const stubborn = launch(process.execPath, ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000); console.log('ready')"])
    launched.push(stubborn)
    await pollUntil(() => stubborn.output().includes('ready'), 10_000, 'the stubborn process to start')
    writePid(pidFile(), stubborn.pid)
    const deps = {...serverStopDeps(500), isOurs: (pid: number) => pid === stubborn.pid}
    expect(await stopFromPidFile(pidFile(), deps)).to.deep.equal({kind: 'killed', pid: stubborn.pid})
    expect(await stubborn.exited).to.equal('SIGKILL')
    expect(existsSync(pidFile())).to.be.false
  })

  it('never signals an unrelated live process named in the PID file; removes the stale file', async () => {
    const unrelated = launch('sleep', ['300'])
    launched.push(unrelated)
    writePid(pidFile(), unrelated.pid)
    expect(await stopFromPidFile(pidFile(), serverStopDeps())).to.deep.equal({kind: 'stale', pid: unrelated.pid, alive: true})
    expect(alive(unrelated.pid)).to.be.true
    expect(stateOf(unrelated.pid)).to.not.equal('T')
    expect(unrelated.child.signalCode).to.equal(null)
    expect(existsSync(pidFile())).to.be.false
  })

  it('removes a PID file naming a process that is gone', async () => {
    const gone = launch('true', [])
    await gone.exited
    writePid(pidFile(), gone.pid)
    expect(await stopFromPidFile(pidFile(), serverStopDeps())).to.deep.equal({kind: 'stale', pid: gone.pid, alive: false})
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
