import {expect} from 'chai'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {EXIT_CONFIG} from '../../src/lib/errors.js'
import {execCommand} from '../../src/lib/exec.js'
import {restartStrategy} from '../../src/lib/restart.js'
import {buildPlist} from '../../src/lib/service/launchd/plist.js'
import {createFakeLaunchctl, type FakeLaunchctlConfig} from '../helpers/fake-launchctl.js'

describe("the watchdog's restart strategy against the fake launchctl (real processes)", () => {
  it('under launchd, held reads launchctl print as the fake launchctl answers it: 78 holds, another exit code or a running job does not', async () => {
    const fake = createFakeLaunchctl()
    try {
      const unused = async (): Promise<never> => {
        throw new Error('held() only reads launchctl print')
      }

      const exec = (file: string, args: string[]) => execCommand(join(fake.dir, file), args)
      const strategy = restartStrategy('launchd', {stop: unused, waitPortFree: unused, spawnServer: unused, exec, uid: 501, log: {info() {}, warn() {}, error() {}}})
      expect(await strategy.held?.(), 'not loaded').to.equal(undefined)
      const plistFile = join(fake.dir, 'com.amplifier.distro.plist')
      writeFileSync(plistFile, buildPlist({Label: 'com.amplifier.distro', ProgramArguments: ['/usr/local/bin/amp-distro', 'serve']}))
      fake.configure({})
      expect((await exec('launchctl', ['bootstrap', 'gui/501', plistFile])).code).to.equal(0)
      const answers: [FakeLaunchctlConfig, boolean][] = [
        [{state: 'not running', lastExitCode: EXIT_CONFIG}, true],
        [{state: 'not running', lastExitCode: 1}, false],
        [{state: 'running', pid: 4242}, false],
      ]
      for (const [config, holds] of answers) {
        fake.configure(config)
        expect((await strategy.held?.()) !== undefined, JSON.stringify(config)).to.equal(holds)
      }
    } finally {
      fake.cleanup()
    }
  })
})
