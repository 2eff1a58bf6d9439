import {expect} from 'chai'
import {existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {UserError} from '../../../../src/lib/errors.js'
import type {DriverContext, JobState} from '../../../../src/lib/service/driver.js'
import {createDriver} from '../../../../src/lib/service/drivers/launchd/driver.js'
import {launchdFakeClock} from '../../../helpers/fake-clock.js'
import {buildPlist, launchdJobs, renderServerPlist, renderWatchdogPlist} from '../../../../src/lib/service/drivers/launchd/plist.js'
import type {Exec} from '../../../../src/lib/service/types.js'

const SERVER = 'com.amplifier.distro'
const WATCHDOG = 'com.amplifier.distro.watchdog'

const printed = (label: string, lines: string[]) => `gui/501/${label} = {\n${lines.map((line) => `\t${line}\n`).join('')}}\n`
const exited78 = ['state = not running', 'runs = 3', 'last exit code = 78: EX_CONFIG']

describe('the launchd driver over a scripted launchctl (no processes, a fake clock)', () => {
  let home: string
  let calls: string[][]
  /** What `print` answers per label; anything else succeeds. */
  let answers: Record<string, string>

  const exec: Exec = async (_file, args) => {
    calls.push(args)
    if (args[0] !== 'print') return {code: 0, stdout: '', stderr: ''}
    const label = args[1].split('/').at(-1)!
    const answer = answers[label]
    return answer === undefined ? {code: 113, stdout: '', stderr: `Bad request.\nCould not find service "${label}" in domain for user gui: 501\n`} : {code: 0, stdout: answer, stderr: ''}
  }

  const driverFor = (overrides: Partial<DriverContext> = {}) => createDriver({home, env: {}, uid: 501, user: 'ada', exec, stream: async () => ({code: 127, stdout: '', stderr: ''}), ...overrides}, {clock: launchdFakeClock()})
  const serverDir = () => join(home, '.amplifier', 'server')

  /** server.err.log with a line of the server's, last changed `agoMs` ago. */
  function serverLine(agoMs: number): void {
    mkdirSync(serverDir(), {recursive: true})
    const file = join(serverDir(), 'server.err.log')
    writeFileSync(file, 'Error: Invalid port: "99999".\n')
    const when = new Date(Date.now() - agoMs)
    utimesSync(file, when, when)
  }

  async function jobs(): Promise<Record<'server' | 'watchdog', JobState>> {
    const inspection = await driverFor().inspect()
    if (!('jobs' in inspection)) throw new Error(`unreachable: ${inspection.unreachable.join(' ')}`)
    return inspection.jobs
  }

  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'launchd-driver-'))
    calls = []
    answers = {}
    const spec = {bin: '/usr/local/bin/amp-distro', host: '127.0.0.1', port: 8400, path: '/usr/bin:/bin', home}
    const [server, watchdog] = launchdJobs(home)
    mkdirSync(join(home, 'Library', 'LaunchAgents'), {recursive: true})
    writeFileSync(server.plistPath, buildPlist(renderServerPlist(spec)))
    writeFileSync(watchdog.plistPath, buildPlist(renderWatchdogPlist(spec)))
  })

  afterEach(() => rmSync(home, {recursive: true, force: true}))

  it("launchd's own 78 (no line of the server's since its last start) is a spawn failure naming the log folder and the program, not a configuration error", async () => {
    answers[SERVER] = printed(SERVER, exited78)
    const {server} = await jobs()
    expect(server).to.deep.include({gaveUp: true, configError: false})
    expect(server.spawnFailed).to.include(`Check that the log folder ${serverDir()} exists`)
    expect(server.spawnFailed).to.include('/usr/local/bin/amp-distro exists and can be run')
    expect(server.detail).to.match(/^not running: launchd could not start the program/)
  })

  it("the server's own 78 (it wrote a line since its last start) is a configuration error", async () => {
    answers[SERVER] = printed(SERVER, exited78)
    serverLine(0)
    const {server} = await jobs()
    expect(server).to.deep.include({gaveUp: true, configError: true, failure: 'exit code 78'})
    expect(server.spawnFailed).to.equal(undefined)
  })

  it('`job state = spawn failed` is a spawn failure whatever the log says', async () => {
    answers[SERVER] = printed(SERVER, [...exited78, 'job state = spawn failed'])
    serverLine(0)
    expect((await jobs()).server).to.deep.include({gaveUp: true, configError: false})
  })

  it('a job launchd holds but never ran (runs = 0) carries the Login Items warning', async () => {
    answers[WATCHDOG] = printed(WATCHDOG, ['state = waiting', 'runs = 0'])
    const {watchdog, server} = await jobs()
    expect(watchdog.warning?.[0]).to.equal(`launchd holds ${WATCHDOG} but has never started it.`)
    expect(watchdog.warning?.[1]).to.include('Login Items')
    expect(server.warning).to.equal(undefined)
  })

  it('no GUI session (print answers 112) is an unreachable domain that names the missing login session', async () => {
    const inspection = await driverFor({exec: async () => ({code: 112, stdout: '', stderr: 'Could not find domain for user gui: 501\n'})}).inspect()
    expect('unreachable' in inspection && inspection.unreachable[0]).to.match(/no macOS login session/)
  })

  it('refuses install, start and restart as root, and nobody else', () => {
    for (const command of ['install', 'start', 'restart'] as const) {
      expect(() => driverFor({uid: 0}).admit?.(command)).to.throw(UserError, `Refusing to ${command} the launchd agents as root`)
      expect(() => driverFor().admit?.(command)).to.not.throw()
    }
  })

  it('start creates the log folder before it loads a job launchd does not hold', async () => {
    expect(existsSync(serverDir())).to.equal(false)
    const driver = driverFor()
    await driver.start(['server'], await jobs())
    expect(existsSync(serverDir())).to.equal(true)
    expect(calls.filter((call) => call[0] !== 'print')).to.deep.equal([
      ['enable', `gui/501/${SERVER}`],
      ['bootstrap', 'gui/501', join(home, 'Library', 'LaunchAgents', `${SERVER}.plist`)],
    ])
  })
})
