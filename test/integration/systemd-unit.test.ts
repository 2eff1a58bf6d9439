import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import {chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {
  directive,
  execStartLine,
  nodeDirOf,
  listenStream,
  parseUnit,
  readListenStream,
  readUnitCommand,
  renderServerUnit,
  renderSocketUnit,
  renderWatchdogUnit,
  type UnitCommand,
} from '../../src/lib/service/drivers/systemd/unit.js'
import type {UnitSpec} from '../../src/lib/service/types.js'

const spec: UnitSpec = {
  bin: '/opt/my tools/amp-distro',
  host: '127.0.0.1',
  port: 8400,
  path: '/home/ada/.nvm/versions/node/v20.20.2/bin:/opt/100%/bin:/usr/bin',
  home: '/home/ada',
}

const HEADER = '# Written by `amp-distro service install`; re-run it to update this file, `amp-distro service uninstall` to remove it.'

describe('systemd unit rendering', () => {
  const units = [
    {
      name: 'the server unit',
      render: renderServerUnit,
      spec,
      expected: `${HEADER}
[Unit]
Description=Amplifier distro server
Requires=amplifier-distro.socket
After=amplifier-distro.socket
StartLimitIntervalSec=60
StartLimitBurst=5

[Service]
Type=simple
ExecStart="/opt/my tools/amp-distro" "serve" "--host" "127.0.0.1" "--port" "8400"
Restart=on-failure
RestartSec=100ms
RestartPreventExitStatus=78
SyslogIdentifier=amp-distro
WorkingDirectory=%h
Environment="PATH=/home/ada/.nvm/versions/node/v20.20.2/bin:/opt/100%%/bin:/usr/bin"
EnvironmentFile=-%h/.amplifier/.env

[Install]
WantedBy=default.target
`,
    },
    {
      name: 'the watchdog unit, tied to the server with After=, Wants= and PartOf=',
      render: renderWatchdogUnit,
      spec: {...spec, host: '::1', port: 9000},
      expected: `${HEADER}
[Unit]
Description=Amplifier distro server health watchdog
After=amplifier-distro.service
Wants=amplifier-distro.service
PartOf=amplifier-distro.service
StartLimitIntervalSec=60
StartLimitBurst=5

[Service]
Type=simple
ExecStart="/opt/my tools/amp-distro" "watchdog" "--host" "::1" "--port" "9000"
Restart=always
RestartSec=1
RestartPreventExitStatus=78
SyslogIdentifier=amp-distro-watchdog
WorkingDirectory=%h
Environment="PATH=/home/ada/.nvm/versions/node/v20.20.2/bin:/opt/100%%/bin:/usr/bin"
EnvironmentFile=-%h/.amplifier/.env

[Install]
WantedBy=default.target
`,
    },
  ]

  for (const unit of units) {
    it(`renders ${unit.name}`, () => {
      expect(unit.render(unit.spec)).to.equal(unit.expected)
    })
  }

  it('renders the socket unit: not enabled (no [Install]), stopped once unneeded, one socket handed over, a backlog of 4096', () => {
    expect(renderSocketUnit(spec, '127.0.0.1')).to.equal(`${HEADER}
[Unit]
Description=Amplifier distro server socket
StopWhenUnneeded=yes

[Socket]
ListenStream=127.0.0.1:8400
Accept=no
Backlog=4096
`)
  })

  const streams: Array<[string, number, string]> = [
    ['::1', 9000, '[::1]:9000'],
    ['0.0.0.0', 80, '0.0.0.0:80'],
    ['::', 8400, '[::]:8400'],
    ['fe80::1%eth0', 8400, '[fe80::1%%eth0]:8400'],
  ]
  for (const [address, port, expected] of streams) {
    it(`socket unit: ListenStream=${expected} for ${address} port ${port}, read back as written`, () => {
      expect(listenStream(address, port)).to.equal(expected)
      expect(readListenStream(renderSocketUnit({port}, address))).to.equal(expected)
    })
  }

  it('socket unit: refuses an address carrying a control character', () => {
    expect(() => renderSocketUnit(spec, '127.0.0.1\nExecStartPre=/bin/true')).to.throw(/control character/)
  })

  it('the server unit requires the socket and starts after it; the watchdog does not name it', () => {
    const server = parseUnit(renderServerUnit(spec))
    expect([directive(server, 'Unit', 'Requires'), directive(server, 'Unit', 'After')]).to.deep.equal(['amplifier-distro.socket', 'amplifier-distro.socket'])
    expect(renderWatchdogUnit(spec)).to.not.include('.socket')
  })

  const perUnit = [
    {name: 'server', render: renderServerUnit, subcommand: 'serve', identifier: 'amp-distro'},
    {name: 'watchdog', render: renderWatchdogUnit, subcommand: 'watchdog', identifier: 'amp-distro-watchdog'},
  ] as const

  for (const unit of perUnit) {
    it(`${unit.name} unit: start limits in [Unit], where systemd reads them; exit status 78 never restarted; journal identifier ${unit.identifier}`, () => {
      const parsed = parseUnit(unit.render(spec))
      expect(directive(parsed, 'Unit', 'StartLimitIntervalSec')).to.equal('60')
      expect(directive(parsed, 'Unit', 'StartLimitBurst')).to.equal('5')
      expect(parsed.get('Service')!.map(([key]) => key)).to.not.include.members(['StartLimitIntervalSec', 'StartLimitBurst'])
      expect(directive(parsed, 'Service', 'RestartPreventExitStatus')).to.equal('78')
      expect(directive(parsed, 'Service', 'SyslogIdentifier')).to.equal(unit.identifier)
    })

    it(`${unit.name} unit: reads back the command, host, port and PATH it wrote`, () => {
      const tricky: UnitSpec = {...spec, bin: String.raw`/opt/a "b" $c 100%\d/amp-distro`, host: 'example.org', port: 65_535, path: '/x $y/bin:/usr/bin'}
      const command = readUnitCommand(unit.render(tricky))!
      expect(command.argv).to.deep.equal([tricky.bin, unit.subcommand, '--host', 'example.org', '--port', '65535'])
      expect(command).to.include({host: 'example.org', port: 65_535, path: '/x $y/bin:/usr/bin'})
      expect(nodeDirOf(command.path)).to.equal('/x $y/bin')
    })

    it(`${unit.name} unit: names the line of its ExecStart=`, () => {
      const text = unit.render(spec)
      const found = execStartLine(text)!
      expect(text.split('\n')[found.line - 1]).to.equal(found.text)
      expect(found.text).to.match(new RegExp(`^ExecStart="/opt/my tools/amp-distro" "${unit.subcommand}"`))
    })
  }

  const handWritten: Array<{what: string; text: string; expected: UnitCommand | undefined}> = [
    {
      what: "falls back to serve's defaults for a unit that names no host or port, dropping systemd's prefixes",
      text: '[Service]\nExecStart=-/usr/bin/amp-distro serve\n',
      expected: {argv: ['/usr/bin/amp-distro', 'serve'], host: '127.0.0.1', port: 8400, path: undefined},
    },
    {
      what: 'reads --host=… and --port=… forms and continuation lines',
      text: '[Service]\nExecStart=amp-distro serve \\\n  --host=0.0.0.0 --port=8500\n',
      expected: {argv: ['amp-distro', 'serve', '--host=0.0.0.0', '--port=8500'], host: '0.0.0.0', port: 8500, path: undefined},
    },
    {
      what: 'takes the last ExecStart= and the PATH from Environment=',
      text: '[Service]\nExecStart=/a serve\nEnvironment="PATH=/n/bin:/usr/bin" LANG=C\nExecStart=/b serve --port 1\n',
      expected: {argv: ['/b', 'serve', '--port', '1'], host: '127.0.0.1', port: 1, path: '/n/bin:/usr/bin'},
    },
    {what: 'says there is no command for a unit without ExecStart=', text: '[Unit]\nDescription=x\n', expected: undefined},
  ]

  for (const {what, text, expected} of handWritten) {
    it(`hand-written unit: ${what}`, () => {
      expect(readUnitCommand(text)).to.deep.equal(expected)
    })
  }

  it('names the ExecStart= line systemd uses (the last in [Service]), and none where there is none', () => {
    expect(execStartLine('[Service]\nExecStart=/a\n\n[Service]\n ExecStart = /b --port 99999\n')).to.deep.equal({line: 5, text: 'ExecStart = /b --port 99999'})
    expect(execStartLine('[Unit]\nExecStart=/not/here\n')).to.equal(undefined)
  })

  const injected: Array<[keyof UnitSpec, string]> = [
    ['host', '127.0.0.1\nExecStartPre=/bin/sh -c "touch /tmp/x"'],
    ['path', '/usr/bin\nExecStartPre=/bin/true'],
    ['bin', '/usr/bin/amp-distro\r'],
  ]
  for (const [key, value] of injected) {
    it(`refuses to render a ${key} carrying a control character`, () => {
      for (const render of [renderServerUnit, renderWatchdogUnit]) expect(() => render({...spec, [key]: value})).to.throw(/control character/)
    })
  }

  describe('templates/amplifier-distro.service', () => {
    const template = readFileSync(new URL('../../templates/amplifier-distro.service', import.meta.url), 'utf8')
    const varying = (key: string, value: string) => key === 'ExecStart' || (key === 'Environment' && value.startsWith('"PATH='))
    const settings = (text: string) =>
      [...parseUnit(text)].flatMap(([section, lines]) => lines.filter(([key, value]) => !varying(key, value)).map(([key, value]) => `[${section}] ${key}=${value}`))

    it('runs amp-distro serve on the default address', () => {
      expect(directive(parseUnit(template), 'Service', 'ExecStart')).to.equal('amp-distro serve --host 127.0.0.1 --port 8400')
    })

    it('has the same settings as the generated server unit', () => {
      expect(settings(template)).to.deep.equal(settings(renderServerUnit(spec)))
      expect(settings(template)).to.have.length.greaterThan(8)
    })

    it('templates/amplifier-distro.socket has the same settings as the generated socket unit', () => {
      const socket = readFileSync(new URL('../../templates/amplifier-distro.socket', import.meta.url), 'utf8')
      expect(settings(socket)).to.deep.equal(settings(renderSocketUnit(spec, '127.0.0.1')))
    })
  })

  describe('systemd-analyze verify', () => {
    let dir: string

    before(function () {
      if (spawnSync('systemd-analyze', ['--version']).status !== 0) {
        if (process.env.CI === 'true') throw new Error('systemd-analyze is missing')
        this.skip()
      }
    })

    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'amp-distro-verify-'))
    })

    afterEach(() => rmSync(dir, {recursive: true, force: true}))

    it('accepts the three generated units without a single line of output', () => {
      // verify needs ExecStart to name an existing executable; a path with a space, % and $ tests the quoting too.
      const binDir = join(dir, 'my tools 100% $HOME', 'bin')
      const runtime = join(dir, 'runtime')
      const units = join(dir, 'units')
      mkdirSync(binDir, {recursive: true})
      mkdirSync(runtime, {mode: 0o700})
      mkdirSync(units)
      writeFileSync(join(binDir, 'amp-distro'), '#!/bin/sh\nexit 0\n')
      chmodSync(join(binDir, 'amp-distro'), 0o755)
      const verified: UnitSpec = {bin: join(binDir, 'amp-distro'), host: '127.0.0.1', port: 8400, path: `${binDir}:/usr/bin:/bin`, home: dir}
      const files = [join(units, 'amplifier-distro.service'), join(units, 'amplifier-distro-watchdog.service'), join(units, 'amplifier-distro.socket')]
      writeFileSync(files[0], renderServerUnit(verified))
      writeFileSync(files[1], renderWatchdogUnit(verified))
      writeFileSync(files[2], renderSocketUnit(verified, '127.0.0.1'))
      const result = spawnSync('systemd-analyze', ['verify', '--user', ...files], {env: {HOME: dir, PATH: '/usr/bin:/bin', XDG_RUNTIME_DIR: runtime}, encoding: 'utf8'})
      expect({status: result.status, stdout: result.stdout, stderr: result.stderr}).to.deep.equal({status: 0, stdout: '', stderr: ''})
    })

    it('would notice a start limit in the wrong section (the check can fail)', () => {
      const runtime = join(dir, 'runtime')
      mkdirSync(runtime, {mode: 0o700})
      const file = join(dir, 'misplaced.service')
      writeFileSync(file, '[Service]\nExecStart=/bin/true\nStartLimitIntervalSec=60\n')
      const result = spawnSync('systemd-analyze', ['verify', '--user', file], {env: {HOME: dir, PATH: '/usr/bin:/bin', XDG_RUNTIME_DIR: runtime}, encoding: 'utf8'})
      expect(result.stderr).to.include("Unknown key 'StartLimitIntervalSec' in section [Service]")
    })
  })
})
