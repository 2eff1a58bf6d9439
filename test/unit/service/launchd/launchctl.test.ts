import {expect} from 'chai'

import {describeJobState} from '../../../../src/lib/service/drivers/launchd/driver.js'
import {type Clock, exitedWithConfigError, explainRefusal, type JobState, Launchctl, LaunchctlError, launchctlWords, neverRan, parseLaunchctlPrint, refusalOf, spawnFailed} from '../../../../src/lib/service/drivers/launchd/launchctl.js'
import type {LaunchdJob} from '../../../../src/lib/service/drivers/launchd/plist.js'
import type {Exec, ExecResult} from '../../../../src/lib/service/types.js'

const SERVER = 'com.amplifier.distro'
const TRY = 'Try re-running the command as root for richer errors.'
const job: LaunchdJob = {label: SERVER, plistPath: '/Users/ada/Library/LaunchAgents/com.amplifier.distro.plist'}

describe('launchctl answers', () => {
  // Each known answer, as launchctl prints it (macOS 13+: a second, generic line), and how it is told.
  const answers: {title: string; args: string[]; code: number; stderr: string; refusal: string; message: string; words: string; next: string}[] = [
    {
      title: 'print of a job launchd does not hold (113, after a bare "Bad request.")',
      args: ['print', `gui/501/${SERVER}`],
      code: 113,
      stderr: `Bad request.\nCould not find service "${SERVER}" in domain for user gui: 501\n`,
      refusal: 'not-loaded',
      message: `launchd does not hold ${SERVER}: it is not loaded.`,
      words: `Could not find service "${SERVER}" in domain for user gui: 501`,
      next: 'Load it again: amp-distro service start',
    },
    {
      title: 'bootout of a job launchd does not hold (3)',
      args: ['bootout', `gui/501/${SERVER}`],
      code: 3,
      stderr: `Boot-out failed: 3: No such process\n${TRY}\n`,
      refusal: 'not-loaded',
      message: `launchd does not hold ${SERVER}: it is not loaded.`,
      words: 'Boot-out failed: 3: No such process',
      next: 'Load it again: amp-distro service start',
    },
    {
      title: 'bootstrap of a job launchd holds (5), its failed line first and "Try re-running" second',
      args: ['bootstrap', 'gui/501', job.plistPath],
      code: 5,
      stderr: `Bootstrap failed: 5: Input/output error\n${TRY}\n`,
      refusal: 'io-error',
      message: `launchd refused to load ${SERVER} from ${job.plistPath} (Input/output error).`,
      words: 'Bootstrap failed: 5: Input/output error',
      next: `Check the file: plutil -lint '${job.plistPath}'; write it again with amp-distro service install`,
    },
    {
      title: 'a request while launchd is still busy with the job (37)',
      args: ['bootstrap', 'gui/501', job.plistPath],
      code: 37,
      stderr: `Bootstrap failed: 37: Operation already in progress\n${TRY}\n`,
      refusal: 'busy',
      message: `launchd is still busy with ${SERVER} (operation already in progress).`,
      words: 'Bootstrap failed: 37: Operation already in progress',
      next: 'Wait a few seconds, then run it again: amp-distro service restart',
    },
    {
      title: 'a bootout in the middle of a teardown (36)',
      args: ['bootout', `gui/501/${SERVER}`],
      code: 36,
      stderr: `Boot-out failed: 36: Operation now in progress\n${TRY}\n`,
      refusal: 'in-progress',
      message: `launchd is still busy with ${SERVER} (operation now in progress).`,
      words: 'Boot-out failed: 36: Operation now in progress',
      next: 'Wait a few seconds, then run it again: amp-distro service restart',
    },
    {
      title: 'bootstrap of a disabled job (119)',
      args: ['bootstrap', 'gui/501', job.plistPath],
      code: 119,
      stderr: `Bootstrap failed: 119: Service is disabled\n${TRY}\n`,
      refusal: 'disabled',
      message: `${SERVER} is disabled in launchd.`,
      words: 'Bootstrap failed: 119: Service is disabled',
      next: 'Enable and start it: amp-distro service start',
    },
    {
      title: 'print without a GUI session (112)',
      args: ['print', `gui/501/${SERVER}`],
      code: 112,
      stderr: 'Could not find domain for user gui: 501\n',
      refusal: 'no-gui-session',
      message: 'This user has no macOS login session here (no launchd gui domain), so launchd cannot tell about or run the agents.',
      words: 'Could not find domain for user gui: 501',
      next: 'The installed agents start by themselves at that login.',
    },
    {
      title: 'bootstrap without a GUI session (125)',
      args: ['bootstrap', 'gui/501', job.plistPath],
      code: 125,
      stderr: `Bootstrap failed: 125: Domain does not support specified action\n${TRY}\n`,
      refusal: 'no-gui-session',
      message: 'This user has no macOS login session here (no launchd gui domain), so launchd cannot tell about or run the agents.',
      words: 'Bootstrap failed: 125: Domain does not support specified action',
      next: 'The installed agents start by themselves at that login.',
    },
    {
      title: 'any other answer names the job',
      args: ['kickstart', `gui/501/${SERVER}`],
      code: 150,
      stderr: 'Could not kickstart service: 150: Operation not permitted while System Integrity Protection is engaged\n',
      refusal: 'other',
      message: `launchctl kickstart gui/501/${SERVER} failed for ${SERVER} (exit 150).`,
      words: 'Could not kickstart service: 150: Operation not permitted while System Integrity Protection is engaged',
      next: 'Then try again: amp-distro service restart',
    },
  ]

  for (const answer of answers) {
    it(answer.title, () => {
      const result = {code: answer.code, stdout: '', stderr: answer.stderr}
      expect(refusalOf(result)).to.equal(answer.refusal)
      expect(launchctlWords(result)).to.equal(answer.words)
      const error = explainRefusal(answer.args, result, job, 'amp-distro service restart')
      expect(error).to.be.instanceOf(LaunchctlError)
      expect(error.message).to.equal(answer.message)
      expect(error.details[0]).to.equal(`launchctl ${answer.args[0]} answered: ${answer.words}`)
      expect(error.details.at(-1)).to.equal(answer.next)
      expect(error.details.join('\n')).not.to.include('Try re-running')
    })
  }
})

describe("launchd's own exit 78 (spawn failed) and the server's (a configuration error)", () => {
  const facts = {logDir: '/Users/ada/.amplifier/server', program: '/usr/local/bin/amp-distro'}
  const spawnText = `launchd could not start the program (its own exit code 78, EX_CONFIG; the program never ran, and launchd tries again every 30 s). Check that the log folder ${facts.logDir} exists and is writable by you, and that ${facts.program} exists and can be run`
  const config = ' (a configuration error: amp-distro service status names the line to fix)'
  // [state, the server wrote a line since the last start, as the diagnosis tells it, spawn failed, configuration error]
  const states: [JobState, boolean, string, boolean, boolean][] = [
    [{loaded: false, state: 'not-loaded'}, false, 'not loaded in launchd', false, false],
    [{loaded: true, state: 'running', pid: 7}, true, 'running, PID 7', false, false],
    [{loaded: true, state: 'not running', lastExitCode: 1}, true, 'not running, last exit code 1', false, false],
    [{loaded: true, state: 'not running', lastExitCode: 78}, true, `not running, last exit code 78${config}`, false, true],
    [{loaded: true, state: 'spawn scheduled', lastExitCode: 78}, true, `spawn scheduled, last exit code 78${config}`, false, true],
    [{loaded: true, state: 'spawn scheduled', lastExitCode: 78}, false, `spawn scheduled: ${spawnText}`, true, false],
    [{loaded: true, state: 'spawn scheduled', lastExitCode: 78, jobState: 'spawn failed'}, true, `spawn scheduled: ${spawnText}`, true, false],
    // A new process runs: the 78 was the one before it, so it may yet answer.
    [{loaded: true, state: 'running', pid: 8, lastExitCode: 78}, false, 'running, PID 8', false, false],
  ]
  for (const [state, wrote, text, spawn, configError] of states) {
    it(`${text}${wrote ? ' (the server wrote a line)' : ''}`, () => {
      expect(describeJobState(state, {...facts, serverWrote: wrote})).to.equal(text)
      expect(spawnFailed(state, wrote)).to.equal(spawn)
      expect(exitedWithConfigError(state, wrote)).to.equal(configError)
    })
  }

  it('reads job state, runs and the terminating signal from print', () => {
    const printed = ['gui/501/x = {', '\tstate = spawn scheduled', '\truns = 3', '\tlast exit code = 78: EX_CONFIG', '\tjob state = spawn failed', '}'].join('\n')
    expect(parseLaunchctlPrint(printed)).to.deep.equal({state: 'spawn scheduled', runs: 3, lastExitCode: 78, jobState: 'spawn failed'})
    expect(parseLaunchctlPrint('x = {\n\tstate = not running\n\truns = 2\n\tlast terminating signal = Killed: 9\n}')).to.deep.include({lastSignal: 9})
  })

  it('a loaded job with runs = 0 and no exit never ran (turned off in Login Items); one with a run did', () => {
    expect(neverRan({loaded: true, state: 'waiting', runs: 0})).to.equal(true)
    expect(neverRan({loaded: true, state: 'not running', runs: 1, lastExitCode: 0})).to.equal(false)
    expect(neverRan({loaded: true, state: 'waiting'})).to.equal(false)
  })
})

/** A clock that only moves when slept on: a sleep returns after a few turns of the microtask queue, so an answer already on its way wins a race with it. */
function fakeClock(): Clock & {slept: number[]} {
  let now = 0
  const slept: number[] = []
  return {
    slept,
    now: () => now,
    async sleep(ms, signal) {
      for (let turn = 0; turn < 20; turn++) await null
      if (signal?.aborted) throw new Error('aborted')
      slept.push(ms)
      now += ms
    },
  }
}

type Answer = Partial<ExecResult> | 'hang'

/** An Exec that answers launchctl from `respond`, recording each call; 'hang' never answers. */
function scripted(respond: (args: string[], count: number) => Answer): {exec: Exec; calls: string[][]} {
  const calls: string[][] = []
  const exec: Exec = (_file, args) => {
    calls.push(args)
    const answer = respond(args, calls.filter((call) => call[0] === args[0]).length)
    if (answer === 'hang') return new Promise(() => {})
    return Promise.resolve({code: 0, stdout: '', stderr: '', ...answer})
  }

  return {exec, calls}
}

const printed = (pid?: number) => ({stdout: `gui/501/${SERVER} = {\n\tstate = ${pid ? 'running' : 'not running'}\n${pid ? `\tpid = ${pid}\n` : ''}\truns = 1\n}\n`})
const notFound = {code: 113, stderr: `Bad request.\nCould not find service "${SERVER}" in domain for user gui: 501\n`}

async function caught(work: () => Promise<unknown>): Promise<LaunchctlError> {
  try {
    await work()
  } catch (error) {
    expect(error).to.be.instanceOf(LaunchctlError)
    return error as LaunchctlError
  }

  throw new Error('expected a LaunchctlError')
}

describe('the launchctl driver, with a scripted launchctl and a fake clock', () => {
  const driver = (exec: Exec, clock = fakeClock(), timing = {}) => new Launchctl({exec, env: {}, uid: 501}, {retry: 'amp-distro service stop', clock, ...timing})

  it('a call that does not answer fails after the call time-out, naming the call', async () => {
    const {exec} = scripted(() => 'hang')
    const clock = fakeClock()
    const error = await caught(() => driver(exec, clock, {callTimeoutMs: 15_000}).inspect(job))
    expect(error.message).to.equal(`launchctl print gui/501/${SERVER} did not answer within 15 s.`)
    expect(error.details.at(-1)).to.equal('Wait a moment, then run it again: amp-distro service stop')
    expect(clock.slept).to.deep.equal([15_000])
  })

  it('print without a GUI session (112) is an error that names the missing login session, never "not loaded"', async () => {
    const {exec} = scripted(() => ({code: 112, stderr: 'Could not find domain for user gui: 501\n'}))
    const error = await caught(() => driver(exec).inspect(job))
    expect(error.refusal).to.equal('no-gui-session')
    expect(error.details).to.include("Log in at the Mac's screen as this user (on a headless Mac, turn on automatic login), then run again: amp-distro service stop")
  })

  it('a bootout that answers 36 is tried again until it succeeds', async () => {
    const {exec, calls} = scripted((args, count) => (args[0] === 'bootout' && count <= 2 ? {code: 36, stderr: `Boot-out failed: 36: Operation now in progress\n${TRY}\n`} : args[0] === 'print' ? notFound : {}))
    await driver(exec).unload(job)
    expect(calls.map((call) => call[0])).to.deep.equal(['bootout', 'bootout', 'bootout', 'print'])
  })

  it('a bootout that keeps answering 36 fails once busyMs has passed', async () => {
    const {exec} = scripted(() => ({code: 36, stderr: `Boot-out failed: 36: Operation now in progress\n${TRY}\n`}))
    const error = await caught(() => driver(exec, fakeClock(), {busyMs: 3000}).unload(job))
    expect(error.message).to.equal(`launchd is still busy with ${SERVER} (operation now in progress).`)
  })

  it('a bootstrap that answers 5 right after our own bootout is tried again; one that answers 5 otherwise fails at once', async () => {
    const refused = {code: 5, stderr: `Bootstrap failed: 5: Input/output error\n${TRY}\n`}
    const teardown = scripted((args, count) => (args[0] === 'print' ? notFound : args[0] === 'bootstrap' && count <= 3 ? refused : {}))
    const launchctl = driver(teardown.exec)
    await launchctl.unload(job)
    await launchctl.load(job)
    expect(teardown.calls.filter((call) => call[0] === 'bootstrap')).to.have.length(4)

    const held = scripted((args) => (args[0] === 'bootstrap' ? refused : {}))
    const error = await caught(() => driver(held.exec).load(job))
    expect(error.refusal).to.equal('io-error')
    expect(held.calls.filter((call) => call[0] === 'bootstrap')).to.have.length(1)
  })

  it('a bootout whose job launchd still holds after unloadMs fails, saying how long it waited', async () => {
    const {exec} = scripted((args) => (args[0] === 'print' ? printed(42) : {}))
    const clock = fakeClock()
    const error = await caught(() => driver(exec, clock, {unloadMs: 2000}).unload(job))
    expect(error.message).to.equal(`launchd still holds ${SERVER} 2 s after it was told to stop it.`)
    expect(clock.now()).to.be.within(2000, 3000)
  })

  it('restart sends SIGTERM, waits for the PID to go, then kickstarts without -k', async () => {
    const {exec, calls} = scripted((args, count) => (args[0] === 'print' ? printed(count <= 2 ? 42 : undefined) : {}))
    expect(await driver(exec).restart(job)).to.equal('stopped')
    expect(calls.filter((call) => call[0] !== 'print')).to.deep.equal([
      ['kill', 'SIGTERM', `gui/501/${SERVER}`],
      ['kickstart', `gui/501/${SERVER}`],
    ])
  })

  it('restart kills a process that does not exit within stopMs (kickstart -k)', async () => {
    const {exec, calls} = scripted((args) => (args[0] === 'print' ? printed(42) : {}))
    const clock = fakeClock()
    expect(await driver(exec, clock, {stopMs: 12_000}).restart(job)).to.equal('killed')
    expect(calls.filter((call) => call[0] !== 'print')).to.deep.equal([
      ['kill', 'SIGTERM', `gui/501/${SERVER}`],
      ['kickstart', '-k', `gui/501/${SERVER}`],
    ])
    expect(clock.now()).to.be.within(12_000, 13_000)
  })
})
