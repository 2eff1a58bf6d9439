import {expect} from 'chai'
import {mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {EXIT_CONFIG} from '../../../src/lib/errors.js'
import {execCommand} from '../../../src/lib/process/exec.js'
import {createDriver} from '../../../src/lib/service/drivers/launchd/driver.js'
import {buildPlist} from '../../../src/lib/service/drivers/launchd/plist.js'
import type {Exec} from '../../../src/lib/service/types.js'
import {restartStrategy} from '../../../src/lib/watchdog/restart-strategy.js'
import {createFakeLaunchctl, type FakeLaunchctl, type FakeLaunchctlConfig} from '../../helpers/fake-launchctl.js'

describe("the watchdog's hold under launchd, reading launchctl print as the fake launchctl answers it", () => {
  let fake: FakeLaunchctl
  let home: string

  beforeEach(() => {
    fake = createFakeLaunchctl()
    home = mkdtempSync(join(tmpdir(), 'watchdog-held-'))
  })

  afterEach(() => {
    fake.cleanup()
    rmSync(home, {recursive: true, force: true})
  })

  /** server.err.log with a line of the server's, last changed `agoMs` ago. */
  function serverLine(agoMs: number): void {
    const dir = join(home, '.amplifier', 'server')
    mkdirSync(dir, {recursive: true})
    const file = join(dir, 'server.err.log')
    writeFileSync(file, 'Error: Invalid port: "99999".\n')
    const when = new Date(Date.now() - agoMs)
    utimesSync(file, when, when)
  }

  it("the server's own 78 holds; launchd's own 78, another exit code, a running job or none does not", async () => {
    const exec: Exec = (file, args, options) => execCommand(join(fake.dir, file), args, options)
    const noStop = {stop: async () => ({kind: 'absent' as const}), waitPortFree: async () => true, spawnServer: async () => 0, log: {info() {}, warn() {}, error() {}}}
    const strategy = restartStrategy(createDriver({home, env: {}, uid: 501, user: 'ada', exec, stream: async () => ({code: 127, stdout: '', stderr: ''})}), noStop)
    expect(await strategy.held?.(), 'not loaded').to.equal(undefined)
    const plistFile = join(fake.dir, 'com.amplifier.distro.plist')
    writeFileSync(plistFile, buildPlist({Label: 'com.amplifier.distro', ProgramArguments: ['/usr/local/bin/amp-distro', 'serve']}))
    fake.configure({})
    expect((await exec('launchctl', ['bootstrap', 'gui/501', plistFile])).code).to.equal(0)
    // [what print reports, how long ago the server last wrote a line, holds]
    const answers: [FakeLaunchctlConfig, number, boolean][] = [
      [{state: 'not running', lastExitCode: EXIT_CONFIG}, 0, true],
      [{state: 'not running', lastExitCode: EXIT_CONFIG}, 10 * 60 * 1000, false],
      [{state: 'not running', lastExitCode: 1}, 0, false],
      [{state: 'running', pid: 4242}, 0, false],
    ]
    for (const [config, agoMs, holds] of answers) {
      fake.configure(config)
      serverLine(agoMs)
      expect((await strategy.held?.()) !== undefined, `${JSON.stringify(config)}, a line ${agoMs} ms ago`).to.equal(holds)
    }
  })
})
