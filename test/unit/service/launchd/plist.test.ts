import {expect} from 'chai'
import plist from 'plist'

import {UserError} from '../../../../src/lib/errors.js'
import {parseLaunchctlList, parseLaunchctlPrint} from '../../../../src/lib/service/drivers/launchd/launchctl.js'
import {buildPlist, checkSpec, installedTarget, renderServerPlist, renderWatchdogPlist} from '../../../../src/lib/service/drivers/launchd/plist.js'
import type {UnitSpec} from '../../../../src/lib/service/types.js'

const spec: UnitSpec = {
  bin: '/usr/local/bin/amp-distro',
  host: '127.0.0.1',
  port: 8400,
  path: '/opt/node-v20/bin:/usr/bin:/bin',
  home: '/Users/ada',
}

const serverExpected = {
  Label: 'com.amplifier.distro',
  ProgramArguments: ['/usr/local/bin/amp-distro', 'serve', '--host', '127.0.0.1', '--port', '8400'],
  RunAtLoad: true,
  KeepAlive: {SuccessfulExit: false},
  ThrottleInterval: 30,
  ExitTimeOut: 10,
  ProcessType: 'Interactive',
  WorkingDirectory: '/Users/ada',
  StandardOutPath: '/Users/ada/.amplifier/server/server.out.log',
  StandardErrorPath: '/Users/ada/.amplifier/server/server.err.log',
  EnvironmentVariables: {PATH: '/opt/node-v20/bin:/usr/bin:/bin', LAUNCHD_JOB_NAME: 'com.amplifier.distro'},
}

const watchdogExpected = {
  Label: 'com.amplifier.distro.watchdog',
  ProgramArguments: ['/usr/local/bin/amp-distro', 'watchdog', '--host', '127.0.0.1', '--port', '8400'],
  RunAtLoad: true,
  KeepAlive: true,
  ThrottleInterval: 30,
  ExitTimeOut: 10,
  ProcessType: 'Interactive',
  WorkingDirectory: '/Users/ada',
  StandardOutPath: '/Users/ada/.amplifier/server/watchdog.out.log',
  StandardErrorPath: '/Users/ada/.amplifier/server/watchdog.err.log',
  EnvironmentVariables: {PATH: '/opt/node-v20/bin:/usr/bin:/bin', LAUNCHD_JOB_NAME: 'com.amplifier.distro.watchdog'},
}

function refused(fn: () => unknown, pattern: RegExp): void {
  let caught: unknown
  try {
    fn()
  } catch (error) {
    caught = error
  }

  expect(caught, 'expected a UserError').to.be.instanceOf(UserError)
  expect((caught as UserError).message).to.match(pattern)
}

describe('launchd plist rendering', () => {
  it('renders the server agent', () => {
    expect(renderServerPlist(spec)).to.deep.equal(serverExpected)
  })

  it('renders the watchdog agent', () => {
    expect(renderWatchdogPlist(spec)).to.deep.equal(watchdogExpected)
  })

  it('serializes plists that parse back to the same structure with plist.parse', () => {
    for (const expected of [serverExpected, watchdogExpected]) {
      const xml = buildPlist(expected)
      expect(xml).to.match(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<!DOCTYPE plist PUBLIC "-\/\/Apple\/\/DTD PLIST 1.0\/\/EN"/)
      expect(plist.parse(xml)).to.deep.equal(expected)
    }
  })

  it('writes the whole server plist as launchd expects it, booleans as <true/>/<false/> and the port as a string', () => {
    expect(buildPlist(renderServerPlist(spec))).to.equal(
      [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
        '<plist version="1.0">',
        '  <dict>',
        '    <key>Label</key>',
        '    <string>com.amplifier.distro</string>',
        '    <key>ProgramArguments</key>',
        '    <array>',
        '      <string>/usr/local/bin/amp-distro</string>',
        '      <string>serve</string>',
        '      <string>--host</string>',
        '      <string>127.0.0.1</string>',
        '      <string>--port</string>',
        '      <string>8400</string>',
        '    </array>',
        '    <key>RunAtLoad</key>',
        '    <true/>',
        '    <key>KeepAlive</key>',
        '    <dict>',
        '      <key>SuccessfulExit</key>',
        '      <false/>',
        '    </dict>',
        '    <key>ThrottleInterval</key>',
        '    <integer>30</integer>',
        '    <key>ExitTimeOut</key>',
        '    <integer>10</integer>',
        '    <key>ProcessType</key>',
        '    <string>Interactive</string>',
        '    <key>WorkingDirectory</key>',
        '    <string>/Users/ada</string>',
        '    <key>StandardOutPath</key>',
        '    <string>/Users/ada/.amplifier/server/server.out.log</string>',
        '    <key>StandardErrorPath</key>',
        '    <string>/Users/ada/.amplifier/server/server.err.log</string>',
        '    <key>EnvironmentVariables</key>',
        '    <dict>',
        '      <key>PATH</key>',
        '      <string>/opt/node-v20/bin:/usr/bin:/bin</string>',
        '      <key>LAUNCHD_JOB_NAME</key>',
        '      <string>com.amplifier.distro</string>',
        '    </dict>',
        '  </dict>',
        '</plist>',
        '',
      ].join('\n'),
    )
    expect(buildPlist(renderWatchdogPlist(spec))).to.include('    <key>KeepAlive</key>\n    <true/>\n')
  })

  it('escapes a home and binary path holding spaces, %, $, & and <, and plist.parse reads them back', () => {
    const home = '/Users/Ada Lovelace/100% $HOME & <stuff>'
    const odd = {...spec, home, bin: `${home}/bin/amp-distro`, path: `${home}/node/bin:/usr/bin`}
    for (const rendered of [renderServerPlist(odd), renderWatchdogPlist(odd)]) {
      const xml = buildPlist(rendered)
      expect(xml).to.include('<string>/Users/Ada Lovelace/100% $HOME &amp; &lt;stuff&gt;</string>')
      expect(xml).not.to.include('& <')
      expect(plist.parse(xml)).to.deep.equal(rendered)
      expect(rendered.WorkingDirectory).to.equal(home)
      expect((rendered.ProgramArguments as string[])[0]).to.equal(`${home}/bin/amp-distro`)
      expect(rendered.StandardOutPath).to.match(/^\/Users\/Ada Lovelace\/100% \$HOME & <stuff>\/\.amplifier\/server\//)
    }
  })

  it('refuses control characters in every value', () => {
    refused(() => renderServerPlist({...spec, host: '127.0.0.1\nExecStartPre=/bin/sh'}), /Invalid host/)
    refused(() => renderServerPlist({...spec, bin: '/usr/local/bin/amp\tdistro'}), /Invalid binary path/)
    refused(() => renderWatchdogPlist({...spec, path: '/usr/bin\n:/bin'}), /Invalid PATH/)
    refused(() => renderWatchdogPlist({...spec, home: '/Users/ada\u007f'}), /Invalid home directory/)
    refused(() => renderServerPlist({...spec, home: '/Users/\u0000ada'}), /control character/)
  })

  it('validates host and port as serve does', () => {
    refused(() => renderServerPlist({...spec, host: 'not a host'}), /Invalid host/)
    refused(() => renderServerPlist({...spec, port: 0}), /Invalid port/)
    refused(() => renderWatchdogPlist({...spec, port: 65_536}), /Invalid port/)
    refused(() => renderServerPlist({...spec, bin: 'amp-distro'}), /not absolute/)
    expect(checkSpec({...spec, host: '[::1]'}).host).to.equal('::1')
    expect(renderServerPlist({...spec, host: 'localhost', port: 1}).ProgramArguments).to.deep.equal([spec.bin, 'serve', '--host', 'localhost', '--port', '1'])
  })
})

describe('where an installed plist serves', () => {
  const args = (...rest: string[]) => ({text: '', args: ['/usr/local/bin/amp-distro', 'serve', ...rest]})
  const cases: [string, ReturnType<typeof args>, {host: string; port: number}][] = [
    ['as install writes it', args('--host', '127.0.0.1', '--port', '8500'), {host: '127.0.0.1', port: 8500}],
    ['written --flag=value by hand, as serve reads it too', args('--host=::1', '--port=8600'), {host: '::1', port: 8600}],
    ['the defaults when neither is given', args(), {host: '127.0.0.1', port: 8400}],
    ['a hand-edited port no server can listen on, kept so that it is reported', args('--port', '99999'), {host: '127.0.0.1', port: 99_999}],
  ]
  for (const [what, installed, target] of cases) {
    it(what, () => expect(installedTarget(installed)).to.deep.equal(target))
  }
})

describe('launchctl output parsing', () => {
  const printed = [
    'gui/501/com.amplifier.distro = {',
    '\tactive count = 1',
    '\tpath = /Users/ada/Library/LaunchAgents/com.amplifier.distro.plist',
    '\tstate = running',
    '',
    '\targuments = {',
    '\t\t/usr/local/bin/amp-distro',
    '\t}',
    '\tpid = 4242',
    '\tlast exit code = (never exited)',
    '\tevent triggers = {',
    '\t\tcom.amplifier.distro.1 => {',
    '\t\t\tstate = 0',
    '\t\t\tpid = 99',
    '\t\t}',
    '\t}',
    '}',
  ].join('\n')

  it('reads state and pid from the top level of launchctl print, not from nested blocks', () => {
    expect(parseLaunchctlPrint(printed)).to.deep.equal({state: 'running', pid: 4242})
  })

  it('reads a loaded job that is not running, with no pid', () => {
    const text = ['gui/501/com.amplifier.distro = {', '\tstate = not running', '\tlast exit code = 1', '\tevent triggers = {', '\t\t\tpid = 99', '\t}', '}'].join('\n')
    expect(parseLaunchctlPrint(text)).to.deep.equal({state: 'not running', lastExitCode: 1})
    expect(parseLaunchctlPrint(text.replace('last exit code = 1', 'last exit code = 78: EX_CONFIG'))).to.deep.equal({state: 'not running', lastExitCode: 78})
  })

  it('reads the PID from launchctl list, and no PID as not running', () => {
    expect(parseLaunchctlList('{\n\t"Label" = "com.amplifier.distro";\n\t"LastExitStatus" = 0;\n\t"PID" = 777;\n};\n')).to.deep.equal({state: 'running', pid: 777})
    expect(parseLaunchctlList('{\n\t"Label" = "com.amplifier.distro";\n\t"LastExitStatus" = 19968;\n};\n')).to.deep.equal({state: 'not running', lastExitCode: 78})
    // A raw wait status: 9 is SIGKILL (as after kickstart -k), not exit code 0.
    expect(parseLaunchctlList('{\n\t"Label" = "com.amplifier.distro";\n\t"LastExitStatus" = 9;\n};\n')).to.deep.equal({state: 'not running', lastSignal: 9})
  })
})
