import {expect} from 'chai'
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {checkHealth} from '../../../src/lib/server/health.js'
import {launchdService as createLaunchdBackend} from '../../helpers/launchd-service.js'
import type {ServiceContext, ServiceResult} from '../../../src/lib/service/types.js'
import {freePort} from '../../helpers/cli.js'
import {createFakeLaunchctl, type FakeLaunchctl, launchdContext} from '../../helpers/fake-launchctl.js'

const SERVER = 'com.amplifier.distro'
const WATCHDOG = 'com.amplifier.distro.watchdog'

/**
 * A stand-in `amp-distro`: `serve` answers /api/health with its own PID and,
 * on SIGTERM, writes `TERM <pid>` to terms.log, finishes the request in
 * flight (GET /slow answers after 300 ms) and exits 0; `watchdog` sleeps until
 * SIGTERM. Real processes, real signals, run by the fake launchctl.
 */
const PROGRAM = String.raw`
import {appendFileSync} from 'node:fs'
import {createServer} from 'node:http'
const [command, , host, , port] = process.argv.slice(2)
const terms = new URL('terms.log', 'file://' + process.env.TERMS_DIR + '/')
process.on('SIGTERM', () => {
  appendFileSync(terms, 'TERM ' + command + ' ' + process.pid + '\n')
  if (command !== 'serve') process.exit(0)
  server.close(() => process.exit(0))
})
if (command !== 'serve') setInterval(() => {}, 60000)
const server = createServer((req, res) => {
  const reply = () => res.end(JSON.stringify({status: 'ok', pid: process.pid, home: process.env.HOME, xpc: process.env.XPC_SERVICE_NAME}))
  if (req.url === '/slow') setTimeout(reply, 300)
  else reply()
})
if (command === 'serve') server.listen(Number(port), host)
`

interface World {
  root: string
  home: string
  port: number
  fake: FakeLaunchctl
  ctx: ServiceContext
  serverPlist: string
}

async function makeWorld(): Promise<World> {
  const root = mkdtempSync(join(tmpdir(), 'launchd-failures-'))
  const home = join(root, 'home')
  mkdirSync(home)
  writeFileSync(join(root, 'program.mjs'), PROGRAM)
  const bin = join(root, 'amp-distro')
  writeFileSync(bin, `#!/bin/sh\nTERMS_DIR='${root}' exec '${process.execPath}' '${join(root, 'program.mjs')}' "$@"\n`)
  chmodSync(bin, 0o755)
  const fake = createFakeLaunchctl()
  fake.configure({spawn: true, home, exitTimeoutMs: 2000, teardownMs: 800, throttleMs: 60_000})
  const ctx = launchdContext(home, `${fake.dir}:/usr/bin:/bin`, {resolveBinary: () => ({path: bin})})
  return {root, home, port: await freePort(), fake, ctx, serverPlist: join(home, 'Library', 'LaunchAgents', `${SERVER}.plist`)}
}

function succeeded(result: ServiceResult): ServiceResult {
  expect(result.success, `${result.message}\n${result.details.join('\n')}`).to.equal(true)
  return result
}

describe('launchd against a fake launchctl that behaves as the real one', function () {
  this.timeout(60_000)
  let world: World

  beforeEach(async () => {
    world = await makeWorld()
  })

  afterEach(() => {
    world.fake.cleanup()
    rmSync(world.root, {recursive: true, force: true})
  })

  const install = (waitSeconds = 20) => createLaunchdBackend(world.ctx).install({host: '127.0.0.1', port: world.port, watchdog: true, dryRun: false, waitSeconds})

  it('1. a failed bootstrap is told with its "failed: N: text" line and the job, never only "Try re-running the command as root"', async () => {
    world.fake.configure({spawn: true, failBootstrap: true})
    const result = await install()
    expect(result.success).to.equal(false)
    const said = [result.message, ...result.details].join('\n')
    expect(said).to.include('Bootstrap failed: 5: Input/output error')
    expect(said).to.include(SERVER)
    expect(said).not.to.include('Try re-running')
  })

  it('2a. a program launchd cannot spawn (78 with job state spawn failed) is told as that, naming the program, never as a configuration error', async () => {
    succeeded(await install())
    const backend = createLaunchdBackend(world.ctx)
    succeeded(await backend.stop())
    rmSync(join(world.root, 'amp-distro'))
    const started = await backend.start({waitSeconds: 20})
    expect(started.success).to.equal(false)
    expect(started.serving!.elapsedMs).to.be.below(15_000)
    const said = started.details.join('\n')
    expect(said).to.include('launchd could not start the program')
    expect(said).to.include(join(world.root, 'amp-distro'))
    expect(said).not.to.include('configuration error')
    const status = await backend.status()
    const warnings = status.warnings.join('\n')
    expect(warnings).to.include('launchd could not start the program')
    expect(warnings).to.include(join(world.root, 'amp-distro'))
    expect(warnings).not.to.include('configuration error')
  })

  it('2b. the log folder is created before every load: start and restart bring the server up after it was removed', async () => {
    succeeded(await install())
    const backend = createLaunchdBackend(world.ctx)
    for (const command of ['start', 'restart'] as const) {
      succeeded(await backend.stop())
      rmSync(join(world.home, '.amplifier'), {recursive: true, force: true})
      const result = succeeded(await backend[command]({waitSeconds: 20}))
      expect(result.serving).to.include({healthy: true, pid: world.fake.pidOf(SERVER)})
      expect(existsSync(join(world.home, '.amplifier', 'server', 'server.err.log'))).to.equal(true)
    }
  })

  it('3a. without a GUI session, status cannot tell (never "stopped") and install names the missing login session', async () => {
    succeeded(await install(0))
    world.fake.configure({spawn: true, home: world.home, noGuiDomain: true})
    const backend = createLaunchdBackend(world.ctx)
    const status = await backend.status()
    expect(status.server.state).to.equal('unknown')
    expect(status.watchdog.state).to.equal('unknown')
    expect([status.message, ...status.details].join('\n')).to.match(/login session/)
    world.fake.unloadAll()
    const again = await install()
    expect(again.success).to.equal(false)
    expect(again.message).to.equal('launchd user domain is not reachable; nothing was installed.')
    expect(again.details.join('\n')).to.match(/login session/)
    expect(again.details.join('\n')).to.match(/log in/i)
  })

  it('3b. installing as root (uid 0) is refused, with nothing written or loaded', async () => {
    const result = await createLaunchdBackend({...world.ctx, uid: 0}).install({host: '127.0.0.1', port: world.port, watchdog: true, dryRun: false, waitSeconds: 0})
    expect(result.success).to.equal(false)
    expect(result.message).to.match(/root/)
    expect(existsSync(world.serverPlist)).to.equal(false)
    expect(world.fake.calls().filter((call) => call[0] !== 'print')).to.deep.equal([])
  })

  it('4. restart stops the server with SIGTERM (kill, then kickstart without -k), and a request in flight is answered', async () => {
    succeeded(await install())
    const before = world.fake.pidOf(SERVER)!
    world.fake.clearCalls()
    const slow = checkHealth(`http://127.0.0.1:${world.port}/slow`, 5000)
    await new Promise((resolve) => setTimeout(resolve, 50))
    const result = succeeded(await createLaunchdBackend(world.ctx).restart({waitSeconds: 20}))
    expect((await slow).healthy).to.equal(true)
    expect(result.serving).to.include({healthy: true, previousPid: before})
    expect(readFileSync(join(world.root, 'terms.log'), 'utf8')).to.include(`TERM serve ${before}`)
    const changes = world.fake.calls().filter((call) => call[0] === 'kill' || call[0] === 'kickstart')
    expect(changes).to.deep.include(['kill', 'SIGTERM', `gui/501/${SERVER}`])
    expect(changes).to.deep.include(['kill', 'SIGTERM', `gui/501/${WATCHDOG}`])
    expect(changes.some((call) => call.includes('-k'))).to.equal(false)
    expect(readFileSync(world.serverPlist, 'utf8')).to.match(/<key>ExitTimeOut<\/key>\s*<integer>(\d+)<\/integer>/)
  })

  it('the fake runs a job as launchd does: the user\'s HOME and XPC_SERVICE_NAME set to its label', async () => {
    succeeded(await install())
    const answer = (await (await fetch(`http://127.0.0.1:${world.port}/api/health`)).json()) as {home: string; xpc: string}
    expect(answer).to.deep.include({home: world.home, xpc: SERVER})
  })

  it('5a. a launchctl that hangs gives a clear error naming the call, within the time-out', async () => {
    succeeded(await install(0))
    world.fake.configure({spawn: true, home: world.home, hang: 'print'})
    const status = await createLaunchdBackend(world.ctx, {callTimeoutMs: 1500}).status()
    expect(status.success).to.equal(false)
    expect(status.details[1]).to.include(`launchctl print gui/501/`)
    expect(status.details[1]).to.match(/did not answer within 1.5 s/)
    expect(status.server.state).to.equal('unknown')
  })

  it('5b. a bootout that answers 36 (operation now in progress) is retried, and stop succeeds', async () => {
    succeeded(await install(0))
    world.fake.configure({spawn: true, home: world.home, inProgress: {bootout: 2}})
    const result = succeeded(await createLaunchdBackend(world.ctx).stop())
    expect(result.message).to.equal(`Stopped ${SERVER} and ${WATCHDOG}.`)
    expect(world.fake.loaded()).to.deep.equal({})
  })

  it('5c. a bootstrap that answers 5 just after our own bootout (launchd still tearing down) is retried, and a re-install succeeds', async () => {
    succeeded(await install())
    world.fake.configure({spawn: true, home: world.home, exitTimeoutMs: 2000, teardownMs: 1500})
    const result = succeeded(await install())
    expect(result.serving).to.include({healthy: true})
    expect(world.fake.calls().filter((call) => call[0] === 'bootstrap').length).to.be.above(2)
  })
})
