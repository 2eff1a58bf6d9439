import {expect} from 'chai'
import {spawn} from 'node:child_process'
import {closeSync, existsSync, openSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {createServer, type Socket} from 'node:net'
import {join} from 'node:path'

import {EXIT_CONFIG} from '../../src/lib/errors.js'
import {MAX_OUTPUT_BYTES} from '../../src/lib/process/output-bound.js'
import {pathsFor} from '../../src/lib/paths.js'
import {readPid} from '../../src/lib/process/pidfile.js'
import {isToolProcess} from '../../src/lib/process/procs.js'
import {cleanup, exitOf, freePort, hasStackTrace, runCli, RUN_JS, type Running, start, tempHome, track, waitFor} from '../helpers/cli.js'
import {alive, healthPid, sessionOf, signal, standaloneEnv, startUnrelated, writePidFile} from '../helpers/processes.js'

describe('amp-distro watchdog (real processes, built CLI)', function () {
  this.timeout(120_000)

  let home: string
  let port: number
  /** Every server PID seen: the watchdog starts them detached, so the test must end them itself. */
  let serverPids: Set<number>

  before(function () {
    if (process.platform !== 'linux') this.skip()
  })

  beforeEach(async () => {
    home = tempHome('amp-distro-watchdog-')
    port = await freePort()
    serverPids = new Set()
  })

  afterEach(async () => {
    const recorded = readPid(pathsFor(home).serverPid)
    if (recorded !== undefined) serverPids.add(recorded)
    // Watchdogs first (cleanup kills every process the test started), so none starts another server meanwhile.
    await cleanup()
    for (const pid of serverPids) {
      if (alive(pid) && isToolProcess(pid, 'serve')) signal(pid, 'SIGKILL')
    }

    await waitFor('spawned servers to exit', () => [...serverPids].every((pid) => !alive(pid)), 10_000)
  })

  const paths = () => pathsFor(home)
  const cli = (args: string[]) => start(RUN_JS, args, {env: standaloneEnv(home)})
  const pidOf = (running: Running) => running.child.pid!

  async function startServer(): Promise<number> {
    const server = pidOf(cli(['serve', '--port', String(port)]))
    serverPids.add(server)
    await waitFor('the first server to answer', async () => (await healthPid(port)) === server, 20_000)
    return server
  }

  async function startWatchdog(extra: string[] = ['--check-interval', '1', '--restart-after', '2']): Promise<Running> {
    const watchdog = cli(['watchdog', '--port', String(port), ...extra])
    await waitFor('the watchdog to write its PID file', () => {
      if (watchdog.child.exitCode !== null) throw new Error(`watchdog exited with ${watchdog.child.exitCode}: ${watchdog.stderr()}`)
      return readPid(paths().watchdogPid) === pidOf(watchdog)
    }, 20_000)
    return watchdog
  }

  /** Waits until a server other than `old` answers 200; returns its PID. */
  async function newServer(old: number | undefined, what: string): Promise<number> {
    return waitFor(what, async () => {
      const pid = await healthPid(port)
      if (pid !== undefined) serverPids.add(pid)
      return pid !== undefined && pid !== old && pid
    }, 60_000, 100)
  }

  it('replaces a server killed with SIGKILL: healthy again under a new PID, in its own session, outliving the watchdog', async () => {
    const server = await startServer()
    const watchdog = await startWatchdog()
    const killedAt = performance.now()
    signal(server, 'SIGKILL')
    const fresh = await newServer(server, 'a new server after kill -9')
    console.log(`      standalone crash recovery (kill -9 → 200 from a new PID, --check-interval 1 --restart-after 2): ${((performance.now() - killedAt) / 1000).toFixed(1)} s`)

    expect(readPid(paths().serverPid)).to.equal(fresh)
    expect(isToolProcess(fresh, 'serve')).to.be.true
    expect(sessionOf(fresh)).to.equal(fresh)
    const log = readFileSync(paths().watchdogLog, 'utf8')
    expect(log).to.include(`Started a new server (PID ${fresh}).`)
    expect(readFileSync(paths().crashLog, 'utf8')).to.include(`listening on http://127.0.0.1:${port} (PID ${fresh})`)

    signal(pidOf(watchdog), 'SIGTERM')
    expect((await watchdog.finished()).code).to.equal(0)
    expect(await healthPid(port)).to.equal(fresh)
  })

  it('replaces a hung server (SIGSTOP), and the hung process does not survive', async () => {
    const server = await startServer()
    await startWatchdog()
    signal(server, 'SIGSTOP')
    const fresh = await newServer(server, 'a new server after kill -STOP')
    expect(fresh).to.not.equal(server)
    await waitFor('the hung server to be gone', () => !alive(server), 15_000)
    expect(readFileSync(paths().watchdogLog, 'utf8')).to.match(new RegExp(`(Stopped|Killed) the server \\(PID ${server}\\)`))
  })

  it('never signals an unrelated process whose PID sits in server.pid', async () => {
    const unrelated = startUnrelated()
    writePidFile(paths().serverPid, unrelated.pid!)
    await startWatchdog()
    const fresh = await newServer(undefined, 'the watchdog to start a server')
    expect(alive(unrelated.pid!)).to.be.true
    expect(unrelated.exitCode).to.equal(null)
    expect(unrelated.signalCode).to.equal(null)
    expect(readPid(paths().serverPid)).to.equal(fresh)
    expect(readFileSync(paths().watchdogLog, 'utf8')).to.include(`server.pid named PID ${unrelated.pid}, which is not an amp-distro serve: removed the stale file, signalled nothing.`)
  })

  it('counts a port that stays busy as a failed attempt, keeps trying, and exits 1 once max-restarts is used up', async () => {
    // Something that is not our server holds the port: it accepts connections and never answers.
    const sockets = new Set<Socket>()
    const holder = createServer((socket) => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
    })
    await new Promise<void>((resolve) => holder.listen({host: '127.0.0.1', port}, resolve))
    try {
      const watchdog = await startWatchdog(['--check-interval', '1', '--restart-after', '1', '--max-restarts', '1'])
      expect((await watchdog.finished()).code).to.equal(1)
      const log = readFileSync(paths().watchdogLog, 'utf8')
      expect(log).to.match(/ WARN Port still busy — will retry next cycle\n/)
      expect(log).to.match(/ ERROR .*all 1 restart attempts are used up/)
      expect(log.indexOf('Port still busy')).to.be.below(log.indexOf('used up'))
      expect(existsSync(paths().crashLog), 'no server was started').to.be.false
      expect(existsSync(paths().watchdogPid)).to.be.false
    } finally {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => holder.close(resolve))
    }
  })

  it('refuses a second watchdog for the same home while the first is alive', async () => {
    const first = await startWatchdog(['--check-interval', '30'])
    const second = await cli(['watchdog', '--port', String(port)]).finished()
    expect(second.code).to.equal(1)
    expect(second.stderr).to.include(`Error: watchdog already running (PID ${pidOf(first)})`)
    expect(hasStackTrace(second.stderr)).to.be.false
    expect(readPid(paths().watchdogPid)).to.equal(pidOf(first))
    expect(alive(pidOf(first))).to.be.true
  })

  it('lets exactly one of two watchdogs started at the same instant for one home run, in every one of 20 rounds', async () => {
    for (let round = 1; round <= 20; round++) {
      const pair = [cli(['watchdog', '--port', String(port), '--check-interval', '30']), cli(['watchdog', '--port', String(port), '--check-interval', '30'])]
      const exited = () => pair.filter((run) => run.child.exitCode !== null || run.child.signalCode !== null)
      await waitFor(`round ${round}: each watchdog to start or exit`, () => pair.every((run) => exited().includes(run) || run.stderr().includes('Watchdog started')), 30_000)
      expect(exited(), `round ${round}: ${pair.map((run) => run.stderr()).join(' / ')}`).to.have.length(1)
      const [loser] = exited()
      const winner = pair.find((run) => run !== loser)!
      expect(loser.child.exitCode, `round ${round}`).to.equal(1)
      expect(loser.stderr()).to.include(`Error: watchdog already running (PID ${pidOf(winner)})`)
      expect(readPid(paths().watchdogPid), `round ${round}`).to.equal(pidOf(winner))
      signal(pidOf(winner), 'SIGTERM')
      expect((await winner.finished()).code).to.equal(0)
      expect(existsSync(paths().watchdogPid)).to.be.false
    }
  })

  it('acts standalone with a foreign INVOCATION_ID and SYSTEMD_EXEC_PID (a shell started from a unit): it starts the dead server itself', async () => {
    const env = {...standaloneEnv(home), INVOCATION_ID: '0123456789abcdef0123456789abcdef', SYSTEMD_EXEC_PID: String(process.pid)}
    const watchdog = start(RUN_JS, ['watchdog', '--port', String(port), '--check-interval', '1', '--restart-after', '1'], {env})
    const fresh = await newServer(undefined, 'the watchdog to start a server')
    expect(readPid(paths().serverPid)).to.equal(fresh)
    const log = readFileSync(paths().watchdogLog, 'utf8')
    expect(log).to.include(`Watchdog started (PID ${pidOf(watchdog)}, standalone)`)
    expect(log).to.not.include('so that systemd restarts')
    expect(watchdog.child.exitCode).to.equal(null)
  })

  it('with a regular file as stderr: empties it at start when over 5 MiB, and copies no log lines into it', async () => {
    const stderrFile = join(home, 'watchdog.err.log')
    writeFileSync(stderrFile, 'x'.repeat(MAX_OUTPUT_BYTES + 1024))
    const fd = openSync(stderrFile, 'a')
    const watchdog = track(spawn(process.execPath, [RUN_JS, 'watchdog', '--port', String(port), '--check-interval', '1', '--restart-after', '30'], {env: standaloneEnv(home), stdio: ['ignore', fd, fd]}))
    closeSync(fd)
    await waitFor('the watchdog to log a few checks', () => existsSync(paths().watchdogLog) && readFileSync(paths().watchdogLog, 'utf8').includes('Server not answering yet'), 20_000)
    const text = readFileSync(stderrFile, 'utf8')
    expect(statSync(stderrFile).size).to.be.below(1024)
    expect(text).to.match(/^--- \S+ amp-distro emptied this file: it had grown past 5242880 bytes ---\n$/)
    expect(readFileSync(paths().watchdogLog, 'utf8')).to.include('Watchdog started')
    signal(watchdog.pid!, 'SIGTERM')
    expect((await exitOf(watchdog)).code).to.equal(0)
    expect(readFileSync(stderrFile, 'utf8'), 'nothing echoed while it ran or stopped').to.equal(text)
  })

  it('takes over a watchdog.pid whose process is gone', async () => {
    writePidFile(paths().watchdogPid, 4_000_000)
    const watchdog = await startWatchdog(['--check-interval', '30'])
    expect(readPid(paths().watchdogPid)).to.equal(pidOf(watchdog))
  })

  it('exits 0 promptly on SIGTERM and on SIGINT in the middle of a 30-second sleep, removing its PID file', async () => {
    await startServer()
    for (const [i, name] of (['SIGTERM', 'SIGINT'] as const).entries()) {
      const watchdog = await startWatchdog(['--check-interval', '30'])
      // Let it log its start, make its first check and go to sleep.
      const started = () => readFileSync(paths().watchdogLog, 'utf8').split('Watchdog started').length - 1
      await waitFor('the watchdog to start', () => existsSync(paths().watchdogLog) && started() === i + 1, 10_000)
      await new Promise((resolve) => setTimeout(resolve, 300))
      const sentAt = performance.now()
      signal(pidOf(watchdog), name)
      // Far below the 30-second interval it would otherwise sleep out.
      const code = await Promise.race([exitOf(watchdog.child).then((exit) => exit.code), new Promise((resolve) => setTimeout(() => resolve('still running after 10 s'), 10_000))])
      expect(code, name).to.equal(0)
      console.log(`      ${name} → exit: ${Math.round(performance.now() - sentAt)} ms`)
      expect(existsSync(paths().watchdogPid)).to.be.false
    }
  })

  it('is hidden from the command list, while its own help works', async () => {
    const list = await runCli(['--help'], {env: standaloneEnv(home)})
    expect(list.code).to.equal(0)
    expect(list.stdout).to.include('serve')
    expect(list.stdout).to.not.include('watchdog')
    const help = await runCli(['watchdog', '--help'], {env: standaloneEnv(home)})
    expect(help.code).to.equal(0)
    for (const flag of ['--host', '--port', '--check-interval', '--restart-after', '--max-restarts']) expect(help.stdout).to.include(flag)
  })

  for (const [args, message] of [
    [['--port', '70000'], 'Error: Invalid port: "70000"'],
    [['--host', 'bad host'], 'Error: Invalid host'],
    [['--check-interval', '0'], 'Error: Invalid check interval: "0"'],
    [['--restart-after', 'soon'], 'Error: Invalid restart-after: "soon"'],
    [['--max-restarts=-1'], 'Error: Invalid max restarts: "-1"'],
  ] as const) {
    it(`refuses ${args.join(' ')} with a clear message and exit 78 (EX_CONFIG), and writes nothing`, async () => {
      const run = await runCli(['watchdog', ...args], {env: standaloneEnv(home)})
      expect(run.code).to.equal(EXIT_CONFIG)
      expect(run.stderr).to.include(message)
      expect(hasStackTrace(run.stderr)).to.be.false
      expect(existsSync(paths().serverDir)).to.be.false
    })
  }
})
