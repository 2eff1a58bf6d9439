import {expect} from 'chai'
import sinon from 'sinon'

import {platformName} from '../../../src/lib/service/drivers/registry.js'
import {runServiceCommand} from '../../../src/lib/service/run.js'
import {renderResult} from '../../../src/lib/service/result.js'
import type {StatusResult} from '../../../src/lib/service/types.js'

describe('service commands on an unsupported platform', () => {
  afterEach(() => sinon.restore())

  for (const platform of ['win32', 'freebsd'] as const) {
    for (const command of ['install', 'uninstall'] as const) {
      it(`${command} fails on ${platform}, pointing to amp-distro serve`, async () => {
        sinon.stub(process, 'platform').value(platform)
        const result = await runServiceCommand(command, {})
        expect(result).to.include({success: false, platform: 'unsupported', message: 'unsupported platform'})
        const rendered = renderResult(result, false)
        expect(rendered.exitCode).to.equal(1)
        expect(rendered.stdout).to.equal('')
        expect(rendered.stderr).to.match(/^Failed: unsupported platform\n/)
        expect(rendered.stderr).to.include(`this machine runs ${platform}`)
        expect(rendered.stderr).to.include('amp-distro serve')
        expect(rendered.stderr).to.include('Task Scheduler or NSSM')
      })
    }

    it(`status reports ${platform} as unsupported and succeeds`, async () => {
      sinon.stub(process, 'platform').value(platform)
      const result = (await runServiceCommand('status', {})) as StatusResult
      expect(result).to.deep.include({success: true, platform: 'unsupported', installed: false, health: null, warnings: [], cliVersion: '0.3.0'})
      expect(result.server).to.deep.equal({installed: false, state: 'unsupported'})
      const rendered = renderResult(result, true)
      expect(rendered.exitCode).to.equal(0)
      expect(JSON.parse(rendered.stdout)).to.include({platform: 'unsupported', success: true})
    })
  }

  it('names the platforms results report', () => {
    expect(platformName('linux')).to.equal('linux')
    expect(platformName('win32')).to.equal('unsupported')
  })
})
