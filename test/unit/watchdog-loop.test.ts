import {expect} from 'chai'
import {existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import sinon from 'sinon'

import {EXIT_CONFIG, UserError} from '../../src/lib/errors.js'
import type {HealthAnswer} from '../../src/lib/server/health.js'
import type {Logger} from '../../src/lib/watchdog/logger.js'
import {type RestartDeps, type RestartOutcome, restartStrategy, type RestartStrategy} from '../../src/lib/watchdog/restart-strategy.js'
import type {DriverContext, JobState} from '../../src/lib/service/driver.js'
import {createDriver as createLaunchdDriver} from '../../src/lib/service/drivers/launchd/driver.js'
import {launchdFakeClock} from '../helpers/fake-clock.js'
import {supervisorOf} from '../../src/lib/service/drivers/registry.js'
import type {Exec, ExecResult} from '../../src/lib/service/types.js'
import type {StopOutcome} from '../../src/lib/process/stop-pid-file.js'
import {FakeDriver, job, socket} from '../helpers/fake-driver.js'
import {abortableSleep, formatDuration, superviseLoop, watchdogSettings, type WatchdogSettings} from '../../src/lib/watchdog/watchdog.js'

const S = 1000

function settings(overrides: Partial<WatchdogSettings> = {}): WatchdogSettings {
  // No start-up grace unless a test asks for one: its own tests below cover it.
  return {host: '127.0.0.1', port: 8400, checkIntervalMs: 30 * S, restartAfterMs: 300 * S, maxRestarts: 5, startGraceMs: 0, ...overrides}
}

interface Line {
  level: 'info' | 'warn' | 'error'
  message: string
  at: number
}

/**
 * A fake world for the loop: a clock that only moves when the loop sleeps,
 * a health check answered by `healthyAt(t)`, and a recording logger. The
 * run ends (abort) once the clock passes `endAt`.
 */
function world(options: {healthyAt: (t: number) => boolean; endAt: number}) {
  const controller = new AbortController()
  let t = 0
  const lines: Line[] = []
  const log: Logger = {
    info: (message) => lines.push({level: 'info', message, at: t}),
    warn: (message) => lines.push({level: 'warn', message, at: t}),
    error: (message) => lines.push({level: 'error', message, at: t}),
  }
  const checks: number[] = []
  return {
    controller,
    lines,
    checks,
    log,
    now: () => t,
    check: async (): Promise<HealthAnswer> => {
      checks.push(t)
      return options.healthyAt(t) ? {healthy: true, status: 200} : {healthy: false, reason: 'ECONNREFUSED'}
    },
    sleep: async (ms: number) => {
      t += ms
      if (t > options.endAt) controller.abort()
    },
    run(s: WatchdogSettings, strategy: RestartStrategy) {
      return superviseLoop(s, {check: this.check, now: this.now, sleep: this.sleep, signal: controller.signal, log, strategy})
    },
  }
}

/** A strategy that answers from a list (the last answer repeats) and records when it was called. */
function scripted(now: () => number, outcomes: RestartOutcome[], onRestart: (t: number) => void = () => {}) {
  const calls: number[] = []
  const strategy: RestartStrategy = {
    mode: 'standalone',
    async restart() {
      calls.push(now())
      onRestart(now())
      return outcomes[Math.min(calls.length - 1, outcomes.length - 1)]
    },
  }
  return {strategy, calls}
}

const RESTARTED: RestartOutcome = {kind: 'restarted', message: 'Started a new server (PID 4242).'}

describe('watchdog loop (fake clock, fake health)', () => {
  it('restarts once the server has been down for restart-after, not before', async () => {
    let restartedAt = Number.POSITIVE_INFINITY
    const w = world({healthyAt: (t) => t > restartedAt, endAt: 1000 * S})
    const {strategy, calls} = scripted(w.now, [RESTARTED], (t) => (restartedAt = t))
    const code = await w.run(settings(), strategy)
    expect(code).to.equal(0)
    // First failure at 0 starts the clock; checks every 30 s; 300 s later it restarts.
    expect(calls).to.deep.equal([300 * S])
    expect(w.lines.find((l) => l.message === 'Started a new server (PID 4242).')?.at).to.equal(300 * S)
  })

  it('logs the first failure once: no "still unhealthy … down for 0 s" right after "unhealthy"', async () => {
    const w = world({healthyAt: () => false, endAt: 70 * S})
    const {strategy} = scripted(w.now, [RESTARTED])
    await w.run(settings(), strategy)
    expect(w.lines.map((l) => [l.at, l.message])).to.deep.equal([
      [0, 'Server unhealthy (ECONNREFUSED); it is restarted if it stays down for 5 min.'],
      [30 * S, 'Server still unhealthy (ECONNREFUSED), down for 30 s.'],
      [60 * S, 'Server still unhealthy (ECONNREFUSED), down for 1 min.'],
    ])
  })

  describe('start-up grace', () => {
    it('does not count failures in the grace period before the server first answers; the clock starts after it', async () => {
      const w = world({healthyAt: () => false, endAt: 400 * S})
      const {strategy, calls} = scripted(w.now, [RESTARTED])
      await w.run(settings({startGraceMs: 60 * S}), strategy)
      // Checks at 0 and 30 s fall in the grace: logged once, not counted. The clock starts at 60 s.
      expect(w.lines[0]).to.deep.equal({level: 'info', message: 'Server not answering yet (ECONNREFUSED); it has 1 min to start.', at: 0})
      expect(w.lines.filter((l) => l.message.startsWith('Server not answering yet'))).to.have.length(1)
      expect(w.lines[1]).to.deep.include({level: 'warn', at: 60 * S})
      expect(w.lines[1].message).to.match(/^Server unhealthy/)
      expect(calls).to.deep.equal([360 * S])
    })

    it('ends at the first healthy answer: a later failure counts at once', async () => {
      // Healthy only at 30 s, inside a 120-s grace, down again from 60 s.
      const w = world({healthyAt: (t) => t === 30 * S, endAt: 400 * S})
      const {strategy, calls} = scripted(w.now, [RESTARTED])
      await w.run(settings({startGraceMs: 120 * S}), strategy)
      expect(w.lines.find((l) => l.level === 'warn')).to.deep.include({at: 60 * S})
      expect(calls).to.deep.equal([360 * S])
    })

    it('never delays a server that answers from the start', async () => {
      const w = world({healthyAt: (t) => t < 30 * S, endAt: 400 * S})
      const {strategy, calls} = scripted(w.now, [RESTARTED])
      await w.run(settings({startGraceMs: 120 * S}), strategy)
      expect(w.lines[0]).to.deep.include({level: 'warn', at: 30 * S})
      expect(calls).to.deep.equal([330 * S])
    })
  })

  describe('a server held by its supervisor (a failed systemd unit)', () => {
    /** A strategy whose `held` answers from `heldAt(t)`, recording restarts. */
    function holding(now: () => number, heldAt: (t: number) => boolean) {
      const calls: number[] = []
      const strategy: RestartStrategy = {
        mode: 'systemd',
        async restart() {
          calls.push(now())
          return {kind: 'exit', code: 1, message: 'Exiting with status 1.'}
        },
        held: async () => (heldAt(now()) ? 'The server unit has failed: run amp-distro service restart.' : undefined),
      }
      return {strategy, calls}
    }

    it('logs once what to do and keeps checking instead of exiting every restart-after, however long it lasts', async () => {
      const w = world({healthyAt: () => false, endAt: 10_000 * S})
      const {strategy, calls} = holding(w.now, () => true)
      const code = await w.run(settings(), strategy)
      expect(code).to.equal(0)
      expect(calls).to.deep.equal([])
      expect(w.lines.filter((l) => l.level === 'error')).to.deep.equal([{level: 'error', message: 'The server unit has failed: run amp-distro service restart.', at: 300 * S}])
      expect(w.lines.at(-1)?.at, 'nothing more is logged while it waits').to.equal(300 * S)
      expect(w.checks.at(-1)).to.be.at.least(9990 * S)
    })

    it('picks up again once the server is started: healthy again, then a new outage is handled as usual', async () => {
      // Failed unit from 0; started again (healthy) at 990 s; down again from 1980 s, with the unit no longer failed.
      const w = world({healthyAt: (t) => t >= 990 * S && t < 1980 * S, endAt: 3000 * S})
      const {strategy, calls} = holding(w.now, (t) => t < 990 * S)
      const code = await w.run(settings(), strategy)
      expect(w.lines.filter((l) => l.level === 'error')).to.have.length(1)
      expect(w.lines.find((l) => l.message.startsWith('Server healthy again'))).to.deep.include({at: 990 * S})
      expect(calls).to.deep.equal([2280 * S])
      expect(code).to.equal(1)
    })

    it('restarts as usual once the unit is no longer failed (reset-failed without a start), saying so', async () => {
      const w = world({healthyAt: () => false, endAt: 3000 * S})
      const {strategy, calls} = holding(w.now, (t) => t < 600 * S)
      expect(await w.run(settings(), strategy)).to.equal(1)
      expect(calls).to.deep.equal([600 * S])
      expect(w.lines.some((l) => l.message.startsWith('The server is no longer held') && l.at === 600 * S)).to.be.true
    })
  })

  it('resets the clock when the server recovers before restart-after, and logs how long it was down', async () => {
    // Down from 0 to 270 s, healthy until 600 s, down again from 600 s.
    const w = world({healthyAt: (t) => (t >= 270 * S && t < 600 * S) || t > 900 * S, endAt: 1000 * S})
    const {strategy, calls} = scripted(w.now, [RESTARTED])
    await w.run(settings(), strategy)
    const recovered = w.lines.filter((l) => l.message.startsWith('Server healthy again'))
    expect(recovered[0]).to.deep.include({level: 'info', message: 'Server healthy again after 4 min 30 s down.', at: 270 * S})
    // Without the reset, the second outage would trigger a restart at 600 s.
    expect(calls).to.deep.equal([900 * S])
  })

  it('counts downtime from when the failing check was sent, so a check that times out counts in full', async () => {
    const w = world({healthyAt: () => false, endAt: 100 * S})
    const {strategy, calls} = scripted(w.now, [{kind: 'exit', code: 1, message: 'handed over'}])
    // Each check takes 5 s to time out on a hung server.
    const slowCheck = async () => {
      const answer = await w.check()
      await w.sleep(5 * S)
      return answer
    }

    const code = await superviseLoop(settings({restartAfterMs: 5 * S}), {check: slowCheck, now: w.now, sleep: w.sleep, signal: w.controller.signal, log: w.log, strategy})
    expect(code).to.equal(1)
    expect(calls).to.deep.equal([5 * S])
  })

  it('honours max-restarts: every attempt counts, and when none are left it logs an error and exits 1', async () => {
    const w = world({healthyAt: () => false, endAt: 100_000 * S})
    const {strategy, calls} = scripted(w.now, [RESTARTED])
    const code = await w.run(settings({maxRestarts: 3}), strategy)
    expect(code).to.equal(1)
    // Each successful restart resets the clock: the next outage starts at the next check.
    expect(calls).to.deep.equal([300 * S, 630 * S, 960 * S])
    const last = w.lines.at(-1)!
    expect(last.level).to.equal('error')
    expect(last.message).to.include('all 3 restart attempts are used up')
    expect(last.at).to.equal(1290 * S)
  })

  it('treats --max-restarts 0 as unlimited', async () => {
    const w = world({healthyAt: () => false, endAt: 10_000 * S})
    const {strategy, calls} = scripted(w.now, [RESTARTED])
    const code = await w.run(settings({maxRestarts: 0}), strategy)
    expect(code).to.equal(0)
    expect(calls.length).to.equal(30)
    expect(w.lines.some((l) => l.level === 'error')).to.be.false
  })

  it('keeps the clock after a port-busy attempt, warns, retries at the next check, and counts the attempt', async () => {
    let restartedAt = Number.POSITIVE_INFINITY
    const w = world({healthyAt: (t) => t > restartedAt, endAt: 1000 * S})
    const {strategy, calls} = scripted(w.now, [{kind: 'port-busy'}, {kind: 'port-busy'}, RESTARTED], (t) => {
      if (calls.length === 3) restartedAt = t
    })
    await w.run(settings(), strategy)
    expect(calls).to.deep.equal([300 * S, 330 * S, 360 * S])
    const busy = w.lines.filter((l) => l.message === 'Port still busy — will retry next cycle')
    expect(busy.map((l) => [l.level, l.at])).to.deep.equal([
      ['warn', 300 * S],
      ['warn', 330 * S],
    ])
    expect(w.lines.some((l) => l.message.includes('restart attempt 3 of 5'))).to.be.true
  })

  it('gives up when port-busy attempts use up max-restarts', async () => {
    const w = world({healthyAt: () => false, endAt: 1000 * S})
    const {strategy, calls} = scripted(w.now, [{kind: 'port-busy'}])
    const code = await w.run(settings({maxRestarts: 2}), strategy)
    expect(code).to.equal(1)
    expect(calls).to.deep.equal([300 * S, 330 * S])
    expect(w.lines.at(-1)).to.deep.include({level: 'error', at: 360 * S})
  })

  it('counts a restart that throws as a failed attempt and keeps the clock', async () => {
    const w = world({healthyAt: () => false, endAt: 1000 * S})
    const calls: number[] = []
    const strategy: RestartStrategy = {
      mode: 'standalone',
      async restart() {
        calls.push(w.now())
        throw new UserError('amp-distro binary not found.')
      },
    }
    const code = await w.run(settings({maxRestarts: 2}), strategy)
    expect(code).to.equal(1)
    expect(calls).to.deep.equal([300 * S, 330 * S])
    expect(w.lines.filter((l) => l.level === 'error').map((l) => l.message)[0]).to.equal('Restart attempt 1 failed: amp-distro binary not found.')
  })

  it('ends with the strategy exit code when the restart is handed to a supervisor', async () => {
    const w = world({healthyAt: () => false, endAt: 1000 * S})
    const {strategy, calls} = scripted(w.now, [{kind: 'exit', code: 1, message: 'Exiting with status 1.'}])
    const code = await w.run(settings(), strategy)
    expect(code).to.equal(1)
    expect(calls).to.deep.equal([300 * S])
    expect(w.checks.at(-1)).to.equal(300 * S)
  })

  it('stops promptly on abort, without waiting out the check interval (real sleep, sinon clock)', async () => {
    const clock = sinon.useFakeTimers({toFake: ['setTimeout', 'clearTimeout']})
    try {
      const controller = new AbortController()
      const {strategy, calls} = scripted(() => 0, [RESTARTED])
      let checks = 0
      const loop = superviseLoop(settings(), {
        check: async () => {
          checks++
          return {healthy: true, status: 200}
        },
        now: () => clock.now,
        sleep: abortableSleep,
        signal: controller.signal,
        log: {info() {}, warn() {}, error() {}},
        strategy,
      })
      // Let the first check run and the loop reach its 30-second sleep.
      await clock.tickAsync(0)
      expect(checks).to.equal(1)
      controller.abort()
      // Resolving without the fake clock moving proves the sleep woke on the abort.
      expect(await loop).to.equal(0)
      expect(clock.now).to.equal(0)
      expect(clock.countTimers()).to.equal(0)
      expect(calls).to.deep.equal([])
    } finally {
      clock.restore()
    }
  })

  it('does not report a busy port when a shutdown cut the wait for it short', async () => {
    const controller = new AbortController()
    const lines: string[] = []
    const code = await superviseLoop(settings({restartAfterMs: 0}), {
      check: async () => ({healthy: false, reason: 'ECONNREFUSED'}),
      now: () => 0,
      sleep: async () => {},
      signal: controller.signal,
      log: {info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m)},
      strategy: {
        mode: 'standalone',
        async restart() {
          controller.abort()
          return {kind: 'port-busy'}
        },
      },
    })
    expect(code).to.equal(0)
    expect(lines.some((line) => line.includes('restart attempt 1'))).to.be.true
    expect(lines).to.not.include('Port still busy — will retry next cycle')
  })

  it('does not act on a check that finished after the abort', async () => {
    const controller = new AbortController()
    const {strategy, calls} = scripted(() => 0, [RESTARTED])
    // restart-after 0 would restart on this very check if the loop acted on it.
    const code = await superviseLoop(settings({restartAfterMs: 0}), {
      check: async () => {
        controller.abort()
        return {healthy: false, reason: 'timeout'}
      },
      now: () => 10 * S,
      sleep: async () => {},
      signal: controller.signal,
      log: {info() {}, warn() {}, error() {}},
      strategy,
    })
    expect(code).to.equal(0)
    expect(calls).to.deep.equal([])
  })
})

describe('abortableSleep', () => {
  it('waits the full time when nothing aborts', async () => {
    const clock = sinon.useFakeTimers({toFake: ['setTimeout', 'clearTimeout']})
    try {
      let done = false
      const sleeping = abortableSleep(30 * S, new AbortController().signal).then(() => (done = true))
      await clock.tickAsync(29 * S)
      expect(done).to.be.false
      await clock.tickAsync(S)
      await sleeping
      expect(done).to.be.true
    } finally {
      clock.restore()
    }
  })

  it('returns at once for an already aborted signal', async () => {
    const clock = sinon.useFakeTimers({toFake: ['setTimeout', 'clearTimeout']})
    try {
      await abortableSleep(30 * S, AbortSignal.abort())
      expect(clock.countTimers()).to.equal(0)
    } finally {
      clock.restore()
    }
  })
})

/** Records every effect a restart strategy uses, in order. */
function effects(options: {portFree?: boolean} = {}) {
  const order: string[] = []
  const lines: string[] = []
  const deps: RestartDeps = {
    async stop(): Promise<StopOutcome> {
      order.push('stop')
      return {kind: 'stopped', pid: 777}
    },
    async waitPortFree() {
      order.push('waitPortFree')
      return options.portFree ?? true
    },
    async spawnServer() {
      order.push('spawn')
      return 4242
    },
    log: {info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m)},
  }
  return {deps, order, lines}
}

/** The home the launchd strategies see: the watchdog's restart creates its log folder there. */
const HOME = mkdtempSync(join(tmpdir(), 'watchdog-loop-'))
after(() => rmSync(HOME, {recursive: true, force: true}))

const PID = 4711
const UNDER_SYSTEMD = {INVOCATION_ID: '0123456789abcdef0123456789abcdef', SYSTEMD_EXEC_PID: String(PID)}
const UNDER_LAUNCHD = {LAUNCHD_JOB_NAME: 'com.amplifier.distro.watchdog', XPC_SERVICE_NAME: 'com.amplifier.distro.watchdog'}
const NO_PROGRAMS: DriverContext = {
  home: '/nonexistent/home',
  env: {},
  uid: 501,
  user: 'ada',
  exec: async () => ({code: 127, stdout: '', stderr: 'no programs here'}),
  stream: async () => ({code: 127, stdout: '', stderr: 'no programs here'}),
}

/** A supervisor whose server job runs, as the in-memory driver keeps it; `revives` false: the watchdog must ask it to start the server again (launchd). */
function supervisor(options: {revives?: boolean; server?: Partial<JobState>} = {}): FakeDriver {
  const driver = new FakeDriver()
  driver.watchdogExitRevivesServer = options.revives ?? true
  driver.jobs.server = job({state: 'active', running: true, pid: 777, ...options.server})
  return driver
}

async function runWithStrategy(strategy: RestartStrategy) {
  const w = world({healthyAt: () => false, endAt: 400 * S})
  return {code: await w.run(settings(), strategy), w}
}

describe('restart strategies', () => {
  const FOREIGN_JOB = {LAUNCHD_JOB_NAME: 'com.example.agent', XPC_SERVICE_NAME: 'com.example.agent'}
  // [the environment, what it is, the supervisor it shows]
  const evidence: [NodeJS.ProcessEnv, string, string | undefined][] = [
    [UNDER_SYSTEMD, 'our unit: SYSTEMD_EXEC_PID is this process', 'systemd'],
    [UNDER_LAUNCHD, 'our watchdog job: XPC_SERVICE_NAME is the LAUNCHD_JOB_NAME', 'launchd'],
    [{LAUNCHD_JOB_NAME: 'com.amplifier.distro', XPC_SERVICE_NAME: 'com.amplifier.distro'}, 'our server job', 'launchd'],
    // A shell started from some unit passes these on to what it starts: they name the unit's process, not this one.
    [{INVOCATION_ID: '0123456789abcdef0123456789abcdef'}, 'a foreign INVOCATION_ID alone', undefined],
    [{INVOCATION_ID: '0123456789abcdef0123456789abcdef', SYSTEMD_EXEC_PID: '1234'}, "another unit's SYSTEMD_EXEC_PID", undefined],
    // A Terminal session: LAUNCHD_JOB_NAME exported by hand, XPC_SERVICE_NAME from Terminal.
    [{LAUNCHD_JOB_NAME: 'com.amplifier.distro.watchdog'}, 'LAUNCHD_JOB_NAME without XPC_SERVICE_NAME', undefined],
    [{LAUNCHD_JOB_NAME: 'com.amplifier.distro.watchdog', XPC_SERVICE_NAME: '0'}, "Terminal's XPC_SERVICE_NAME", undefined],
    // Started from some other job's environment: launchd supervises that job, not this watchdog.
    [FOREIGN_JOB, "another job's label in both", undefined],
    [{LAUNCHD_JOB_NAME: '', XPC_SERVICE_NAME: ''}, 'both empty', undefined],
    [{}, 'nothing', undefined],
  ]
  for (const [env, what, name] of evidence) {
    it(`${what}: ${name ?? 'standalone'}`, async () => expect((await supervisorOf(env, PID, NO_PROGRAMS))?.name).to.equal(name))
  }

  it('no supervisor started it (another job’s environment, a foreign INVOCATION_ID): standalone, so it starts the server itself', async () => {
    const fx = effects()
    const strategy = restartStrategy(await supervisorOf(FOREIGN_JOB, PID, NO_PROGRAMS), fx.deps)
    const {code} = await runWithStrategy(strategy)
    expect(strategy.mode).to.equal('standalone')
    expect(code).to.equal(0)
    expect(fx.order).to.deep.equal(['stop', 'waitPortFree', 'spawn'])
  })

  it('a server job its supervisor gave up holds the restart: logged once, the server is not stopped, the watchdog does not exit', async () => {
    const driver = supervisor({server: {state: 'failed', running: false, pid: undefined, gaveUp: true, failure: 'start-limit-hit'}})
    const fx = effects()
    const {code, w} = await runWithStrategy(restartStrategy(driver, fx.deps))
    expect(code).to.equal(0)
    expect(fx.order).to.deep.equal([])
    expect(driver.calls).to.deep.equal([])
    const said = w.lines.filter((line) => line.level === 'error')
    expect(said).to.have.length(1)
    expect(said[0].message).to.include('fake-server has failed (start-limit-hit)')
    expect(said[0].message).to.include('amp-distro service status')
    expect(said[0].message).to.include('amp-distro service restart')
  })

  it('a server job whose socket the supervisor gave up (its port taken) is held the same way, naming the socket', async () => {
    const driver = supervisor({server: {state: 'inactive', running: false, pid: undefined, socket: socket({state: 'failed', running: false, failure: 'resources', portTaken: true})}})
    const fx = effects()
    const {code} = await runWithStrategy(restartStrategy(driver, fx.deps))
    expect(code).to.equal(0)
    expect(fx.order).to.deep.equal([])
    expect(await restartStrategy(driver, fx.deps).held?.()).to.include('fake-server cannot start: its socket fake-socket failed (resources)')
  })

  it('a server job whose socket listens is not held', async () => {
    expect(await restartStrategy(supervisor({server: {socket: socket()}}), effects().deps).held?.()).to.equal(undefined)
  })

  it('a server job that exited with a configuration error is held the same way, naming the error', async () => {
    const driver = supervisor({revives: false, server: {running: false, pid: undefined, gaveUp: true, configError: true}})
    expect(await restartStrategy(driver, effects().deps).held?.()).to.include(`exited with a configuration error (exit code ${EXIT_CONFIG})`)
  })

  it('a server job whose program the supervisor could not start at all does not hold the restart: a restart creates what it lacked', async () => {
    const driver = supervisor({revives: false, server: {running: true, pid: undefined, gaveUp: true, spawnFailed: 'fakevisor could not start the program'}})
    expect(await restartStrategy(driver, effects().deps).held?.()).to.equal(undefined)
  })

  it('a supervisor that starts the server with the watchdog (systemd): stops the server and exits 1, asks nothing more, never spawns', async () => {
    const driver = supervisor()
    const fx = effects()
    const strategy = restartStrategy(driver, fx.deps)
    const {code, w} = await runWithStrategy(strategy)
    expect(strategy.mode).to.equal('fakevisor')
    expect(code).to.equal(1)
    expect(fx.order).to.deep.equal(['stop'])
    expect(driver.calls).to.deep.equal([])
    expect(fx.lines).to.include('Stopped the server (PID 777).')
    expect(w.lines.map((line) => line.message)).to.include('Exiting with status 1 so that fakevisor restarts the watchdog and starts the server again.')
  })

  it('a supervisor that does not (launchd): stops the server, has the supervisor restart the server job, exits 1, never spawns', async () => {
    const driver = supervisor({revives: false})
    const fx = effects()
    const {code, w} = await runWithStrategy(restartStrategy(driver, fx.deps))
    expect(code).to.equal(1)
    expect(fx.order).to.deep.equal(['stop'])
    expect(driver.calls).to.deep.equal(['restart server'])
    expect(w.lines.map((line) => line.message)).to.include('Exiting with status 1 so that fakevisor restarts the watchdog.')
  })

  it('a restart of the server job that the supervisor refuses is logged, and it still exits 1', async () => {
    const driver = supervisor({revives: false})
    driver.refuse = 'restart'
    const fx = effects()
    const {code} = await runWithStrategy(restartStrategy(driver, fx.deps))
    expect(code).to.equal(1)
    expect(fx.lines.some((line) => line.includes('fakevisor did not start fake-server again: fakectl restart failed (exit 1).'))).to.equal(true)
  })



  /** The launchd driver over a launchctl that answers `print` from `printed` (its count so far) and everything else with `other`, recording the calls. */
  function launchdOver(printed: (count: number) => string, other: ExecResult = {code: 0, stdout: '', stderr: ''}) {
    const calls: string[][] = []
    let prints = 0
    const exec: Exec = async (_file, args) => {
      calls.push(args)
      if (args[0] !== 'print') return other
      // The watchdog job is printed too; it runs.
      if (args[1].endsWith('.watchdog')) return {code: 0, stdout: 'gui/501/com.amplifier.distro.watchdog = {\n\tstate = running\n\tpid = 778\n}\n', stderr: ''}
      prints++
      return {code: 0, stdout: printed(prints), stderr: ''}
    }

    return {driver: createLaunchdDriver({...NO_PROGRAMS, home: HOME, exec}, {clock: launchdFakeClock()}), calls}
  }

  const running = 'gui/501/com.amplifier.distro = {\n\tstate = running\n\tpid = 777\n}\n'
  const gone = 'gui/501/com.amplifier.distro = {\n\tstate = not running\n\tlast exit code = 0\n}\n'

  it('under launchd: stops the server, has launchd start the server job again without killing anything (kickstart without -k), exits 1, never spawns', async () => {
    // The held check sees the server run; once stopped, the restart finds no process and only starts the job.
    const {driver, calls} = launchdOver((count) => (count <= 1 ? running : gone))
    const fx = effects()
    const {code} = await runWithStrategy(restartStrategy(driver, fx.deps))
    expect(code).to.equal(1)
    expect(fx.order).to.deep.equal(['stop'])
    expect(calls.filter((args) => args[0] !== 'print')).to.deep.equal([['kickstart', 'gui/501/com.amplifier.distro']])
    expect(existsSync(join(HOME, '.amplifier', 'server')), 'the log folder, created before the start').to.equal(true)
  })

  it('under launchd, a server that still runs after the stop is restarted gracefully: SIGTERM, then kickstart without -k', async () => {
    const {driver, calls} = launchdOver((count) => (count <= 3 ? running : gone))
    const {code} = await runWithStrategy(restartStrategy(driver, effects().deps))
    expect(code).to.equal(1)
    expect(calls.filter((args) => args[0] !== 'print')).to.deep.equal([
      ['kill', 'SIGTERM', 'gui/501/com.amplifier.distro'],
      ['kickstart', 'gui/501/com.amplifier.distro'],
    ])
  })

  /** Writes server.err.log in the home the strategies see, last changed `agoMs` ago, as the server's own line. */
  function serverLine(agoMs: number): void {
    const dir = join(HOME, '.amplifier', 'server')
    mkdirSync(dir, {recursive: true})
    const file = join(dir, 'server.err.log')
    writeFileSync(file, 'Error: Invalid port: "99999". Use a whole number from 1 to 65535.\n')
    const when = new Date(Date.now() - agoMs)
    utimesSync(file, when, when)
  }

  const exited78 = ['gui/501/com.amplifier.distro = {', '\tstate = not running', '', '\truns = 14', `\tlast exit code = ${EXIT_CONFIG}: EX_CONFIG`, '}', ''].join('\n')

  it("under launchd, held tells the server's own 78 from launchd's (spawn failed, or no line of the server's since its last start)", async () => {
    // [print, how long ago the server last wrote a line, holds]
    const answers: [string, number, boolean][] = [
      [exited78, 0, true],
      [exited78, 10 * 60 * S, false],
      [exited78.replace('}', '\tjob state = spawn failed\n}'), 0, false],
      [exited78.replace(`${EXIT_CONFIG}: EX_CONFIG`, '1'), 0, false],
      [running, 0, false],
    ]
    for (const [printed, agoMs, holds] of answers) {
      serverLine(agoMs)
      const held = await restartStrategy(launchdOver(() => printed).driver, effects().deps).held?.()
      expect(held !== undefined, `${printed} ${agoMs}`).to.equal(holds)
      if (holds) expect(held).to.include(`exited with a configuration error (exit code ${EXIT_CONFIG})`)
    }
  })

  it('under launchd, a server job that keeps exiting 78 with a line of its own holds the restart: logged once, no stop, no kickstart, the watchdog does not exit', async () => {
    serverLine(0)
    const {driver, calls} = launchdOver(() => exited78)
    const fx = effects()
    const w = world({healthyAt: () => false, endAt: 1200 * S})
    expect(await w.run(settings(), restartStrategy(driver, fx.deps))).to.equal(0)
    expect(fx.order).to.deep.equal([])
    expect(calls.every((args) => args[0] === 'print')).to.equal(true)
    expect(w.lines.filter((line) => line.level === 'error')).to.have.length(1)
  })

  it('under launchd, a restart launchctl refuses is logged with its own line, and it still exits 1', async () => {
    const refused = {code: 113, stdout: '', stderr: 'Bad request.\nCould not find service "com.amplifier.distro" in domain for user gui: 501\n'}
    const {driver} = launchdOver(() => gone, refused)
    const fx = effects()
    const {code} = await runWithStrategy(restartStrategy(driver, fx.deps))
    expect(code).to.equal(1)
    expect(fx.lines.some((line) => line.includes('launchd did not start com.amplifier.distro again') && line.includes('Could not find service'))).to.equal(true)
  })
  it('standalone: a port that stays busy is a failed attempt and nothing is spawned', async () => {
    const fx = effects({portFree: false})
    const outcome = await restartStrategy(undefined, fx.deps).restart()
    expect(outcome).to.deep.equal({kind: 'port-busy'})
    expect(fx.order).to.deep.equal(['stop', 'waitPortFree'])
  })

  it('describes a stale PID file without claiming a stop', async () => {
    const fx = effects()
    fx.deps.stop = async () => ({kind: 'stale', pid: 31337, alive: true})
    await restartStrategy(supervisor(), fx.deps).restart()
    expect(fx.lines[0]).to.equal('server.pid named PID 31337, which is not an amp-distro serve: removed the stale file, signalled nothing.')
  })
})

describe('watchdog settings', () => {
  const defaults = {host: '127.0.0.1', port: '8400', checkInterval: '30', restartAfter: '300', maxRestarts: '5'}

  it('parses the defaults into milliseconds', () => {
    expect(watchdogSettings(defaults)).to.deep.equal({host: '127.0.0.1', port: 8400, checkIntervalMs: 30_000, restartAfterMs: 300_000, maxRestarts: 5, startGraceMs: 30_000})
    expect(watchdogSettings({...defaults, restartAfter: '10'}).startGraceMs, 'a short restart-after keeps a short grace').to.equal(10_000)
    expect(watchdogSettings({...defaults, maxRestarts: '0'}).maxRestarts).to.equal(0)
  })

  for (const [flag, value, pattern] of [
    ['port', '0', /Invalid port/],
    ['port', '8400x', /Invalid port/],
    ['host', '127.0.0.1\nExecStartPre=/bin/true', /control character/],
    ['checkInterval', '0', /Invalid check interval/],
    ['checkInterval', '-5', /Invalid check interval/],
    ['checkInterval', '1.5', /Invalid check interval/],
    ['checkInterval', '86401', /from 1 to 86400/],
    ['restartAfter', 'soon', /Invalid restart-after/],
    ['restartAfter', '0', /Invalid restart-after/],
    ['maxRestarts', '-1', /Invalid max restarts/],
    ['maxRestarts', 'many', /Invalid max restarts/],
  ] as const) {
    it(`refuses ${flag} ${JSON.stringify(value)} as a configuration error (exit 78)`, () => {
      expect(() => watchdogSettings({...defaults, [flag]: value}))
        .to.throw(UserError)
        .with.property('message')
        .that.matches(pattern)
      expect(() => watchdogSettings({...defaults, [flag]: value}))
        .to.throw(UserError)
        .with.property('exit', EXIT_CONFIG)
    })
  }

  it('formats durations for the log', () => {
    expect(formatDuration(12_400)).to.equal('12 s')
    expect(formatDuration(300_000)).to.equal('5 min')
    expect(formatDuration(303_000)).to.equal('5 min 3 s')
  })
})
