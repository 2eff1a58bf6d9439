import {expect} from 'chai'
import {chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import plist from 'plist'
import sinon from 'sinon'

import {platformName} from '../../../src/lib/service/drivers/registry.js'
import {createServiceContext, runServiceCommand} from '../../../src/lib/service/run.js'
import {renderResult} from '../../../src/lib/service/result.js'
import type {ServiceContext, StatusResult} from '../../../src/lib/service/types.js'
import {createFakeLaunchctl, type FakeLaunchctl} from '../../helpers/fake-launchctl.js'

describe('service commands on macOS (platform stubbed to darwin)', function () {
  this.timeout(30_000)
  let root: string
  let home: string
  let bin: string
  let fake: FakeLaunchctl
  let ctx: ServiceContext

  beforeEach(async () => {
    sinon.stub(process, 'platform').value('darwin')
    root = mkdtempSync(join(tmpdir(), 'launchd-command-'))
    home = join(root, 'home')
    mkdirSync(home)
    bin = join(root, 'bin', 'amp-distro')
    mkdirSync(join(root, 'bin'))
    writeFileSync(bin, '#!/bin/sh\n')
    chmodSync(bin, 0o755)
    fake = createFakeLaunchctl()
    // The jobs' processes exit on restart's SIGTERM, as the server does.
    fake.configure({exitsOnSignal: true})
    // The context the commands build, pointed at a temporary home, a fake launchctl and a known binary.
    // As user 501: these tests may run as root, whom install refuses.
    ctx = {...(await createServiceContext('install')), uid: 501, home, env: {PATH: `${fake.dir}:/usr/bin:/bin`}, resolveBinary: () => ({path: bin})}
  })

  afterEach(() => {
    sinon.restore()
    fake.cleanup()
    rmSync(root, {recursive: true, force: true})
  })

  it('reports the platform as macos', () => {
    expect(platformName('darwin')).to.equal('macos')
  })

  it('install --dry-run renders both plists and the launchctl commands, and changes nothing', async () => {
    const result = await runServiceCommand('install', {'dry-run': true, port: '8765'}, {context: ctx})
    const rendered = renderResult(result, false)
    expect(rendered.exitCode).to.equal(0)
    expect(rendered.stderr).to.equal('')
    const agents = join(home, 'Library', 'LaunchAgents')
    const lines = rendered.stdout.split('\n')
    expect(lines.slice(0, 3)).to.deep.equal([
      'Dry run: amplifier-distro service install',
      '  Nothing was changed. An install would:',
      `  write ${join(agents, 'com.amplifier.distro.plist')} (mode 0644):`,
    ])
    expect(rendered.stdout).to.include(`  write ${join(agents, 'com.amplifier.distro.watchdog.plist')} (mode 0644):`)
    const uid = 501
    expect(rendered.stdout).to.include(`  run: launchctl bootstrap gui/${uid} ${join(agents, 'com.amplifier.distro.plist')}\n`)
    expect(rendered.stdout).to.include(`  run: launchctl bootstrap gui/${uid} ${join(agents, 'com.amplifier.distro.watchdog.plist')}\n`)

    // The server plist as printed (indented by four spaces) parses back to the agent install would write.
    const start = lines.indexOf(`  write ${join(agents, 'com.amplifier.distro.plist')} (mode 0644):`) + 1
    const end = lines.indexOf(`  write ${join(agents, 'com.amplifier.distro.watchdog.plist')} (mode 0644):`)
    const server = plist.parse(lines.slice(start, end).map((line) => line.slice(4)).join('\n')) as Record<string, unknown>
    expect(server.Label).to.equal('com.amplifier.distro')
    expect(server.ProgramArguments).to.deep.equal([bin, 'serve', '--host', '127.0.0.1', '--port', '8765'])
    expect(server.WorkingDirectory).to.equal(home)

    expect(readdirSync(home)).to.deep.equal([])
    expect(fake.calls()).to.deep.equal([])
  })

  it('install --dry-run --json prints one object with platform macos', async () => {
    const result = await runServiceCommand('install', {'dry-run': true}, {context: ctx})
    const parsed = JSON.parse(renderResult(result, true).stdout) as {success: boolean; platform: string; details: string[]}
    expect(parsed).to.include({success: true, platform: 'macos'})
    expect(parsed.details).to.include(`run: launchctl enable gui/501/com.amplifier.distro`)
  })

  it('install, status and uninstall run against launchctl', async () => {
    const installed = await runServiceCommand('install', {port: '8765', wait: '0'}, {context: ctx})
    expect(installed.success, installed.message).to.equal(true)
    expect(fake.loaded()).to.have.keys('com.amplifier.distro', 'com.amplifier.distro.watchdog')
    const status = (await runServiceCommand('status', {}, {context: ctx})) as StatusResult
    expect(status).to.deep.include({success: true, platform: 'macos', installed: true})
    expect(status.server).to.deep.equal({installed: true, state: 'running', pid: 1234})
    expect(status.health?.url).to.equal('http://127.0.0.1:8765/api/health')
    const removed = await runServiceCommand('uninstall', {}, {context: ctx})
    expect(removed).to.include({success: true, message: 'Uninstalled amplifier-distro service.'})
    expect(readdirSync(join(home, 'Library', 'LaunchAgents'))).to.deep.equal([])
    expect(fake.loaded()).to.deep.equal({})
  })

  it('stop, start, restart and logs run through the service commands, and exit 1 naming install when nothing is installed', async () => {
    for (const command of ['start', 'stop', 'restart', 'logs'] as const) {
      const rendered = renderResult(await runServiceCommand(command, {wait: '0'}, {context: ctx}), false)
      expect(rendered.exitCode, command).to.equal(1)
      const verb = command === 'logs' ? 'show logs of' : command
      expect(rendered.stderr).to.equal(`Failed: amplifier-distro service is not installed, so there is nothing to ${verb}.\n  Install it: amp-distro service install\n`)
    }

    expect((await runServiceCommand('install', {port: '8765', wait: '0'}, {context: ctx})).success).to.equal(true)
    expect(renderResult(await runServiceCommand('stop', {}, {context: ctx}), false).stdout).to.match(/^Stopped com\.amplifier\.distro and com\.amplifier\.distro\.watchdog\.\n/)
    expect(fake.loaded()).to.deep.equal({})
    expect(renderResult(await runServiceCommand('start', {wait: '0'}, {context: ctx}), false).stdout).to.match(/^Started com\.amplifier\.distro and com\.amplifier\.distro\.watchdog\.\n/)
    expect(renderResult(await runServiceCommand('restart', {wait: '0'}, {context: ctx}), false).stdout).to.match(/^Restarted com\.amplifier\.distro and com\.amplifier\.distro\.watchdog\.\n/)
    writeFileSync(join(home, '.amplifier', 'server', 'server.out.log'), 'one\ntwo\n')
    const lines: string[] = []
    const logs = await runServiceCommand('logs', {lines: '1', write: (line) => lines.push(line.text)}, {context: ctx})
    expect(logs.success).to.equal(true)
    expect(lines).to.deep.equal(['[server.out.log] two'])
    const badLines = await runServiceCommand('logs', {lines: 'many'}, {context: ctx})
    expect(badLines.success).to.equal(false)
  })

  it('install refuses a host with a newline and writes nothing', async () => {
    const result = await runServiceCommand('install', {host: 'localhost\nevil'}, {context: ctx})
    const rendered = renderResult(result, false)
    expect(rendered.exitCode).to.equal(1)
    expect(rendered.stderr).to.match(/^Failed: Invalid host: .*control character/)
    expect(readdirSync(home)).to.deep.equal([])
    expect(fake.calls()).to.deep.equal([])
  })
})
