import {expect} from 'chai'

import {DEFAULT_HOST, DEFAULT_PORT, hostPort, NAMES, pathsFor, serverUrl} from '../../src/lib/paths.js'

describe('paths', () => {
  it('derives the server files from the home directory', () => {
    const paths = pathsFor('/home/ada')
    expect(paths).to.include({
      amplifierHome: '/home/ada/.amplifier',
      envFile: '/home/ada/.amplifier/.env',
      serverDir: '/home/ada/.amplifier/server',
      serverPid: '/home/ada/.amplifier/server/server.pid',
      watchdogPid: '/home/ada/.amplifier/server/watchdog.pid',
      watchdogLog: '/home/ada/.amplifier/server/watchdog.log',
      crashLog: '/home/ada/.amplifier/server/crash.log',
      serverStdoutLog: '/home/ada/.amplifier/server/server.out.log',
      serverStderrLog: '/home/ada/.amplifier/server/server.err.log',
    })
  })

  it('puts systemd user units under ~/.config/systemd/user by default', () => {
    const paths = pathsFor('/home/ada', {})
    expect(paths.systemdUserDir).to.equal('/home/ada/.config/systemd/user')
    expect(paths.systemdServerUnit).to.equal('/home/ada/.config/systemd/user/amplifier-distro.service')
    expect(paths.systemdWatchdogUnit).to.equal('/home/ada/.config/systemd/user/amplifier-distro-watchdog.service')
  })

  it('honours an absolute XDG_CONFIG_HOME', () => {
    expect(pathsFor('/home/ada', {XDG_CONFIG_HOME: '/srv/conf'}).systemdServerUnit).to.equal('/srv/conf/systemd/user/amplifier-distro.service')
  })

  for (const value of ['', 'relative/conf', './conf', '~/conf']) {
    it(`ignores XDG_CONFIG_HOME=${JSON.stringify(value)}, as the XDG spec requires for empty or relative values`, () => {
      expect(pathsFor('/home/ada', {XDG_CONFIG_HOME: value}).systemdUserDir).to.equal('/home/ada/.config/systemd/user')
    })
  }

  it('reads nothing from the process environment', () => {
    const saved = process.env.XDG_CONFIG_HOME
    process.env.XDG_CONFIG_HOME = '/from/the/process'
    try {
      expect(pathsFor('/home/ada').systemdUserDir).to.equal('/home/ada/.config/systemd/user')
    } finally {
      if (saved === undefined) delete process.env.XDG_CONFIG_HOME
      else process.env.XDG_CONFIG_HOME = saved
    }
  })

  it('puts launchd agents under ~/Library/LaunchAgents with the com.amplifier.distro label', () => {
    const paths = pathsFor('/Users/ada')
    expect(paths.launchAgentsDir).to.equal('/Users/ada/Library/LaunchAgents')
    expect(paths.launchdServerPlist).to.equal('/Users/ada/Library/LaunchAgents/com.amplifier.distro.plist')
    expect(paths.launchdWatchdogPlist).to.equal('/Users/ada/Library/LaunchAgents/com.amplifier.distro.watchdog.plist')
  })

  it('names the unit, the label, the binary and the defaults', () => {
    expect(NAMES).to.include({bin: 'amp-distro', packageName: 'amp-distro', serviceName: 'amplifier-distro', systemdUnit: 'amplifier-distro', launchdLabel: 'com.amplifier.distro'})
    expect(DEFAULT_HOST).to.equal('127.0.0.1')
    expect(DEFAULT_PORT).to.equal(8400)
  })

  it('puts IPv6 addresses in brackets in addresses and URLs', () => {
    expect(hostPort('::1', 8400)).to.equal('[::1]:8400')
    expect(hostPort('127.0.0.1', 8400)).to.equal('127.0.0.1:8400')
    expect(serverUrl('::', 80)).to.equal('http://[::]:80')
    expect(serverUrl('localhost', 8400)).to.equal('http://localhost:8400')
  })
})
