import {expect} from 'chai'

import {plannedWriteLines, renderResult} from '../../../src/lib/service/result.js'
import type {ServiceResult, StatusResult} from '../../../src/lib/service/types.js'

describe('service result rendering', () => {
  const ok: ServiceResult = {success: true, platform: 'linux', message: 'Installed amplifier-distro.service.', details: ['Wrote /x', 'Runs: /y']}
  const bad: ServiceResult = {success: false, platform: 'unsupported', message: 'unsupported platform', details: ['Run amp-distro serve']}

  it('prints a success on stdout: the message, then indented details', () => {
    expect(renderResult(ok, false)).to.deep.equal({stdout: 'Installed amplifier-distro.service.\n  Wrote /x\n  Runs: /y\n', stderr: '', exitCode: 0})
  })

  it('prints a failure on stderr as "Failed: <message>" with indented details, exit 1', () => {
    expect(renderResult(bad, false)).to.deep.equal({stdout: '', stderr: 'Failed: unsupported platform\n  Run amp-distro serve\n', exitCode: 1})
  })

  it('prints status warnings on stderr, after the state on stdout', () => {
    const status: StatusResult = {
      ...ok,
      message: 'amplifier-distro service is installed.',
      details: [],
      installed: true,
      server: {installed: true, state: 'active', pid: 12},
      watchdog: {installed: false, state: 'not-installed'},
      health: null,
      warnings: ['Warning: one.\n  Run: x', 'Warning: two.'],
      cliVersion: '0.3.0',
    }
    expect(renderResult(status, false)).to.deep.equal({
      stdout: 'amplifier-distro service is installed.\n',
      stderr: 'Warning: one.\n  Run: x\nWarning: two.\n',
      exitCode: 0,
    })
  })

  it('prints the same object as JSON for --json, keeping the exit code', () => {
    for (const result of [ok, bad]) {
      const rendered = renderResult(result, true)
      expect(JSON.parse(rendered.stdout)).to.deep.equal(result)
      expect(rendered.stdout).to.equal(`${JSON.stringify(result, null, 2)}\n`)
      expect(rendered.stderr).to.equal('')
      expect(rendered.exitCode).to.equal(result.success ? 0 : 1)
    }
  })

  it('shows a file a dry run would write as its path and mode, then its content indented, without the last newline', () => {
    expect(plannedWriteLines({path: '/home/ada/.config/systemd/user/amplifier-distro.service', content: '[Unit]\nDescription=x\n\n[Service]\n'})).to.deep.equal([
      'write /home/ada/.config/systemd/user/amplifier-distro.service (mode 0644):',
      '  [Unit]',
      '  Description=x',
      '  ',
      '  [Service]',
    ])
  })
})
