import {expect} from 'chai'

import {formatUptime, versionDriftWarning, versionLine} from '../../../src/lib/service/status-lines.js'

describe('status lines shared by both backends', () => {
  for (const [seconds, text] of [
    [0, '0 s'],
    [59.9, '59 s'],
    [60, '1 min 0 s'],
    [252, '4 min 12 s'],
    [3720, '1 h 2 min'],
    [7500, '2 h 5 min'],
    [86_399, '23 h 59 min'],
    [86_400, '1 d 0 h'],
    [273_600, '3 d 4 h'],
  ] as const) {
    it(`uptime ${seconds} s reads ${text}`, () => {
      expect(formatUptime(seconds)).to.equal(text)
    })
  }

  it('names the server’s and this CLI’s version, and warns to restart only when they differ', () => {
    expect(versionLine('0.2.9', '0.3.0')).to.equal('Version:  0.2.9 (this amp-distro: 0.3.0)')
    expect(versionDriftWarning('0.3.0', '0.3.0')).to.equal(undefined)
    expect(versionDriftWarning('0.2.9', '0.3.0')).to.equal(
      'Warning: the running server is version 0.2.9, this amp-distro is 0.3.0: the service runs the new files only once restarted.\n  Run: amp-distro service restart',
    )
  })
})
