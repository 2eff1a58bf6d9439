import {expect} from 'chai'
import {createServer as createHttpServer, type Server as HttpServer} from 'node:http'

import type {DriverContext} from '../../../src/lib/service/driver.js'
import {createDriver as createLaunchdDriver} from '../../../src/lib/service/drivers/launchd/driver.js'
import {createDriver as createSystemdDriver} from '../../../src/lib/service/drivers/systemd/driver.js'
import type {ServiceResult, ServingReport} from '../../../src/lib/service/types.js'
import {
  type DiagnosisFacts,
  portConflictLines,
  portConflictWarning,
  servingFailure,
  servingLine,
  type Verification,
  verifyServing,
  waitUntilServing,
} from '../../../src/lib/service/health-wait.js'
import {cleanup, closeServer, freePort, holdPort} from '../../helpers/cli.js'

const NO_PROGRAMS: DriverContext = {
  home: '/nonexistent/home',
  env: {},
  uid: 501,
  user: 'ada',
  exec: async () => ({code: 127, stdout: '', stderr: 'no programs here'}),
  stream: async () => ({code: 127, stdout: '', stderr: 'no programs here'}),
}
const systemdPortOwner = createSystemdDriver(NO_PROGRAMS).portOwnerCommand
const launchdPortOwner = createLaunchdDriver(NO_PROGRAMS).portOwnerCommand

/** A real health endpoint on 127.0.0.1 that answers with whatever PID `pid()` says at the time. */
async function healthServer(pid: () => number): Promise<{server: HttpServer; port: number}> {
  const server = createHttpServer((_req, res) => {
    res.writeHead(200, {'content-type': 'application/json'})
    res.end(JSON.stringify({status: 'ok', version: '9.9.9', pid: pid(), uptimeSeconds: 1}))
  })
  await new Promise<void>((resolve) => server.listen({host: '127.0.0.1', port: 0}, resolve))
  return {server, port: (server.address() as {port: number}).port}
}

/** The clock a wait runs on: a sleep moves it on at once, so a 30 s wait takes no time. */
function fakeClock(): {now: () => number; sleep: (ms: number) => Promise<void>} {
  let t = 0
  return {now: () => t, sleep: async (ms) => void (t += ms)}
}

describe('waitUntilServing', () => {
  let http: HttpServer | undefined

  afterEach(async () => {
    await closeServer(http)
    http = undefined
  })

  it('ends healthy once the answer comes from the main PID, with the version and the time taken', async () => {
    const started = await healthServer(() => 4242)
    http = started.server
    const report = await waitUntilServing(
      {host: '127.0.0.1', port: started.port},
      {startedAt: 0, waitSeconds: 5},
      {mainPid: async () => 4242, ...fakeClock()},
    )
    expect(report).to.deep.equal({url: `http://127.0.0.1:${started.port}/api/health`, healthy: true, pid: 4242, version: '9.9.9', elapsedMs: 0, waitSeconds: 5})
  })

  it('waits while the old server (previousPid) still answers, and ends once the new main PID does', async () => {
    let serving = 100
    const started = await healthServer(() => serving)
    http = started.server
    let asked = 0
    const report = await waitUntilServing(
      {host: '127.0.0.1', port: started.port},
      {startedAt: 0, waitSeconds: 10, previousPid: 100},
      {
        // The supervisor names the new process at once; the old one keeps answering for three more polls.
        mainPid: async () => {
          asked++
          if (asked > 3) serving = 200
          return asked > 1 ? 200 : 100
        },
        ...fakeClock(),
      },
    )
    expect(report).to.include({healthy: true, pid: 200, previousPid: 100})
    expect(asked).to.be.greaterThan(3)
    expect(report.elapsedMs).to.equal(300)
  })

  it('never counts another program answering on the port, and gives up at the deadline', async () => {
    const started = await healthServer(() => 1)
    http = started.server
    const report = await waitUntilServing(
      {host: '127.0.0.1', port: started.port},
      {startedAt: 0, waitSeconds: 2},
      {mainPid: async () => 777, ...fakeClock()},
    )
    expect(report).to.deep.equal({url: `http://127.0.0.1:${started.port}/api/health`, healthy: false, pid: 777, elapsedMs: 2000, waitSeconds: 2})
  })

  it('ends early once the supervisor has given the server up', async () => {
    let asked = 0
    const report = await waitUntilServing(
      {host: '127.0.0.1', port: await freePort()},
      {startedAt: 0, waitSeconds: 30},
      {
        mainPid: async () => undefined,
        gaveUp: async () => ++asked >= 3,
        ...fakeClock(),
      },
    )
    expect(report).to.include({healthy: false, elapsedMs: 200})
  })

  it('gives up when the supervisor never names a main PID, without asking health', async () => {
    let checks = 0
    const report = await waitUntilServing(
      {host: '127.0.0.1', port: await freePort()},
      {startedAt: 0, waitSeconds: 1},
      {
        mainPid: async () => undefined,
        check: async () => {
          checks++
          return {healthy: false, reason: 'ECONNREFUSED'}
        },
        ...fakeClock(),
      },
    )
    expect(report).to.include({healthy: false, elapsedMs: 1000})
    expect(report).to.not.have.property('pid')
    expect(checks).to.equal(0)
  })
})

describe('a port nothing can listen on (a hand-edited unit)', () => {
  it('waitUntilServing never asks health, and ends once the supervisor has given the server up', async () => {
    let checks = 0
    let polls = 0
    const report = await waitUntilServing(
      {host: '127.0.0.1', port: 99_999},
      {startedAt: 0, waitSeconds: 30},
      {
        // The server runs for two polls, then has exited and the supervisor has given it up.
        mainPid: async () => (++polls <= 2 ? 4242 : 0),
        gaveUp: async () => polls > 2,
        check: async () => {
          checks++
          return {healthy: false}
        },
        ...fakeClock(),
      },
    )
    expect(report).to.include({url: 'http://127.0.0.1:99999/api/health', healthy: false, waitSeconds: 30})
    expect(report.elapsedMs).to.be.above(0).and.below(30_000)
    expect(checks).to.equal(0)
  })

  it('servingFailure says the port is not a TCP port instead of probing it', async () => {
    const report: ServingReport = {url: 'http://127.0.0.1:99999/api/health', healthy: false, elapsedMs: 0, waitSeconds: 30}
    const result = await servingFailure({
      platform: 'linux',
      command: 'restart',
      target: {host: '127.0.0.1', port: 99_999},
      report,
      supervisorState: 'failed (exit-code) (amplifier-distro.service)',
      logTail: [],
      portOwnerCommand: systemdPortOwner,
    })
    expect(result.details).to.deep.equal([
      'Supervisor: the server is failed (exit-code) (amplifier-distro.service).',
      "Port: 99999 is not a TCP port (1-65535): fix the server's command line, or re-run amp-distro service install --port <port>",
      'More: amp-distro service logs',
    ])
  })
})

describe('servingFailure and servingLine', () => {
  afterEach(() => cleanup())

  const report = (port: number): ServingReport => ({url: `http://127.0.0.1:${port}/api/health`, healthy: false, elapsedMs: 3012, waitSeconds: 3})
  const facts = (port: number, command: DiagnosisFacts['command']): DiagnosisFacts => ({
    platform: 'linux',
    command,
    target: {host: '127.0.0.1', port},
    report: report(port),
    supervisorState: 'activating (auto-restart) (amplifier-distro.service)',
    logTail: ['Error: Cannot listen on 127.0.0.1: address already in use'],
    portOwnerCommand: systemdPortOwner,
  })

  it('names a port held by a real listener, with the command that finds it, and says the install stays', async () => {
    const held = await holdPort()
    const result = await servingFailure(facts(held.port, 'install'))
    expect(result).to.deep.equal({
      success: false,
      platform: 'linux',
      message: `The server did not answer http://127.0.0.1:${held.port}/api/health within 3 s after install.`,
      details: [
        'Supervisor: the server is activating (auto-restart) (amplifier-distro.service).',
        `Port: 127.0.0.1:${held.port} is in use by another program, so the server cannot listen there.`,
        `  See which program: ss -ltnp 'sport = :${held.port}'`,
        '  Stop that program, or install on another port: amp-distro service install --port <port>',
        'Last lines of the server log:',
        '  Error: Cannot listen on 127.0.0.1: address already in use',
        'More: amp-distro service logs',
        'The service stays installed; once the cause is fixed: amp-distro service restart',
      ],
      serving: report(held.port),
    })
  })

  it('claims no port conflict for a server that exited with a configuration error, although a program holds its port', async () => {
    const held = await holdPort()
    const result = await servingFailure({...facts(held.port, 'start'), supervisorState: 'not running, last exit code 78', configError: true})
    expect(result.details[0]).to.equal('Supervisor: the server is not running, last exit code 78.')
    expect(result.details.join('\n')).to.not.include('Port:')
  })

  it('says nothing about the port when it is free, nor about staying installed after a restart', async () => {
    const result = await servingFailure(facts(await freePort(), 'restart'))
    expect(result.details.join('\n')).to.not.include('Port:')
    expect(result.details.join('\n')).to.not.include('stays installed')
    expect(result.message).to.match(/within 3 s after restart\.$/)
  })

  it('tells how long the server took, to a tenth of a second', () => {
    expect(servingLine({url: 'http://127.0.0.1:1/api/health', healthy: true, pid: 12, elapsedMs: 1234, waitSeconds: 30})).to.equal(
      'Healthy: http://127.0.0.1:1/api/health answered from PID 12 after 1.2 s.',
    )
  })
})

describe('the port conflict: one wording for both platforms', () => {
  const platforms = [
    {platform: 'linux', portOwnerCommand: systemdPortOwner, finds: "ss -ltnp 'sport = :8500'"},
    {platform: 'macos', portOwnerCommand: launchdPortOwner, finds: 'lsof -nP -iTCP:8500 -sTCP:LISTEN'},
  ]

  for (const {platform, portOwnerCommand, finds} of platforms) {
    it(`${platform}: status warns with the diagnosis's lines under its own label, naming ${finds.split(' ')[0]}`, () => {
      const target = {host: '::1', port: 8500}
      const lines = [
        '[::1]:8500 is in use by another program, so the server cannot listen there.',
        `  See which program: ${finds}`,
        '  Stop that program, or install on another port: amp-distro service install --port <port>',
      ]
      expect(portConflictWarning(target, portOwnerCommand)).to.equal(`Warning: ${lines.join('\n')}`)
      expect(portConflictLines('Port:', target, portOwnerCommand)).to.deep.equal([`Port: ${lines[0]}`, ...lines.slice(1)])
    })
  }
})

describe('verifyServing: how install, start and restart end on both backends', () => {
  let http: HttpServer | undefined

  afterEach(async () => {
    await closeServer(http)
    http = undefined
  })

  const done: ServiceResult = {success: true, platform: 'macos', message: 'Started amplifier-distro service.', details: ['Started com.amplifier.distro (kickstart).']}
  const verification = (port: number, waitSeconds: number, asked: string[]): Verification => ({
    platform: 'macos',
    command: 'start',
    target: {host: '127.0.0.1', port},
    timing: {startedAt: 0, waitSeconds},
    supervisor: {
      async mainPid() {
        asked.push('mainPid')
        return 4242
      },
      now: () => 0,
      sleep: async () => undefined,
    },
    async diagnose() {
      asked.push('diagnose')
      return {supervisorState: 'not running, last exit code 1', logTail: ['Error: Cannot listen']}
    },
    portOwnerCommand: launchdPortOwner,
  })

  it('--wait 0: what the supervisor accepted, at once, without asking it anything', async () => {
    const asked: string[] = []
    expect(await verifyServing(done, verification(await freePort(), 0, asked))).to.equal(done)
    expect(asked).to.deep.equal([])
  })

  it('a server answering from the main PID: the accepted result with how long it took, and no diagnosis', async () => {
    const started = await healthServer(() => 4242)
    http = started.server
    const asked: string[] = []
    const result = await verifyServing(done, verification(started.port, 5, asked))
    const serving = {url: `http://127.0.0.1:${started.port}/api/health`, healthy: true, pid: 4242, version: '9.9.9', elapsedMs: 0, waitSeconds: 5}
    expect(result).to.deep.equal({...done, details: [...done.details, servingLine(serving)], serving})
    expect(asked).to.deep.equal(['mainPid'])
  })

  it('a server that never answers: the diagnosis from what the backend tells, asked once the wait is over', async () => {
    const port = await freePort()
    const asked: string[] = []
    const result = await verifyServing(done, {...verification(port, 1, asked), supervisor: {mainPid: async () => undefined, ...fakeClock()}})
    expect(result).to.deep.include({success: false, platform: 'macos', message: `The server did not answer http://127.0.0.1:${port}/api/health within 1 s after start.`})
    expect(result.details).to.deep.equal([
      'Supervisor: the server is not running, last exit code 1.',
      'Last lines of the server log:',
      '  Error: Cannot listen',
      'More: amp-distro service logs',
    ])
    expect(asked).to.deep.equal(['diagnose'])
  })
})
