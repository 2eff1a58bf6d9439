import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {createServer as createHttpServer, type Server as HttpServer} from 'node:http'
import {dirname} from 'node:path'

import {pathsFor} from '../../../../src/lib/paths.js'
import {streamLines} from '../../../../src/lib/exec.js'
import {createSystemdBackend} from '../../../../src/lib/service/systemd/backend.js'
import {renderServerUnit, renderSocketUnit} from '../../../../src/lib/service/systemd/unit.js'
import {DEPRECATED_WARNING} from '../../../../src/lib/service/stale.js'
import type {Exec, ServiceContext} from '../../../../src/lib/service/types.js'
import {cleanup, closeServer, freePort, holdPort, RUN_JS, tempHome} from '../../../helpers/cli.js'
import {FakeManager, journalEntry} from '../../../helpers/fake-systemctl.js'

/** systemctl as a fake that answers the one question status asks of it: the units' state. */
function fakeSystemctl(server: {ActiveState: string; SubState: string; Result: string; MainPID: number}, unitFile: string): Exec {
  return async () => {
    const block = (unit: Record<string, string | number>) =>
      Object.entries(unit)
        .map(([key, value]) => `${key}=${value}`)
        .join('\n')
    // The socket runs while the server does, and stops with it (StopWhenUnneeded=).
    const socket = server.ActiveState === 'active' ? {ActiveState: 'active', SubState: 'running'} : {ActiveState: 'inactive', SubState: 'dead'}
    const stdout = [
      block({LoadState: 'loaded', ...server, FragmentPath: unitFile}),
      block({LoadState: 'not-found', ActiveState: 'inactive', SubState: 'dead', MainPID: 0, Result: 'success', FragmentPath: ''}),
      block({LoadState: 'loaded', ...socket, MainPID: 0, Result: 'success', FragmentPath: unitFile.replace(/\.service$/, '.socket')}),
    ].join('\n\n')
    return {code: 0, stdout: `${stdout}\n`, stderr: ''}
  }
}

async function statusWith(server: Parameters<typeof fakeSystemctl>[0], port: number) {
  const home = tempHome()
  const paths = pathsFor(home)
  mkdirSync(paths.systemdUserDir, {recursive: true})
  writeFileSync(paths.systemdServerUnit, renderServerUnit({bin: RUN_JS, host: '127.0.0.1', port, path: `${dirname(process.execPath)}:/usr/bin:/bin`, home}))
  writeFileSync(paths.systemdSocketUnit, renderSocketUnit({port}, '127.0.0.1'))
  const backend = createSystemdBackend({
    home,
    env: {},
    uid: 1000,
    user: 'someone',
    exec: fakeSystemctl(server, paths.systemdServerUnit),
    stream: streamLines,
    version: '0.3.0',
    nodePath: process.execPath,
    resolveBinary: () => ({path: RUN_JS}),
  })
  return backend.status()
}

const FAILED = {ActiveState: 'failed', SubState: 'failed', Result: 'start-limit-hit', MainPID: 0}

describe('systemd status: a port held by another program', () => {
  afterEach(() => cleanup())

  it('names the conflict first, with how to find the program and how to move, when the failed server’s port is taken', async () => {
    const {port} = await holdPort()
    const result = await statusWith(FAILED, port)
    expect(result.warnings[0]).to.equal(
      [
        `Warning: 127.0.0.1:${port} is in use by ${readFileSync(`/proc/${process.pid}/comm`, 'utf8').trim()} (PID ${process.pid}), so the server cannot listen there.`,
        `  See which program: ss -ltnp 'sport = :${port}'`,
        '  Stop that program, or install on another port: amp-distro service install --port <port>',
      ].join('\n'),
    )
    expect(result.warnings[1]).to.match(/^Warning: amplifier-distro\.service has failed \(start-limit-hit\)/)
    expect(result.warnings[1]).to.contain('Recover: amp-distro service start')
  })

  it('says nothing about the port when the failed server’s port is free', async () => {
    const result = await statusWith(FAILED, await freePort())
    expect(result.warnings.join('\n')).not.to.contain('in use by another program')
    expect(result.warnings.join('\n')).to.contain('has failed (start-limit-hit)')
  })

  it('says nothing about the port when the server itself is running and holds it', async () => {
    const {port} = await holdPort()
    const result = await statusWith({ActiveState: 'active', SubState: 'running', Result: 'success', MainPID: process.pid}, port)
    expect(result.warnings).to.deep.equal([])
  })
})

describe('systemd status with nothing installed', () => {
  afterEach(() => cleanup())

  const backendIn = (home: string, exec: Exec) =>
    createSystemdBackend({home, env: {}, uid: 1000, user: 'ada', exec, stream: streamLines, version: '0.3.0', nodePath: process.execPath, resolveBinary: () => ({path: RUN_JS})})

  const NOT_INSTALLED_DETAILS = [
    'Platform: linux (systemd user units)',
    'Server:   not installed (amplifier-distro.service)',
    'Watchdog: not installed (amplifier-distro-watchdog.service)',
    'Socket:   not installed (amplifier-distro.socket)',
    'Install it: amp-distro service install',
  ]

  it('asks systemd nothing when there is no unit file and no server or watchdog of ours runs', async () => {
    const manager = new FakeManager()
    manager.reachable = false
    const result = await backendIn(tempHome(), manager.exec).status()
    expect(manager.calls).to.deep.equal([])
    expect(result).to.deep.include({success: true, installed: false, message: 'amplifier-distro service is not installed.', health: null, warnings: []})
    expect(result.details).to.deep.equal(NOT_INSTALLED_DETAILS)
  })

  it('asks systemd nothing for PID files whose processes are gone', async () => {
    const home = tempHome()
    const paths = pathsFor(home)
    const gone = spawnSync(process.execPath, ['-e', '0']).pid
    mkdirSync(dirname(paths.serverPid), {recursive: true})
    writeFileSync(paths.serverPid, `${gone}\n`)
    writeFileSync(paths.watchdogPid, `${gone}\n`)
    const manager = new FakeManager()
    const result = await backendIn(home, manager.exec).status()
    expect(manager.calls).to.deep.equal([])
    expect(result.details).to.deep.equal(NOT_INSTALLED_DETAILS)
  })

  for (const file of ['serverPid', 'watchdogPid'] as const) {
    it(`asks systemd when the ${file === 'serverPid' ? 'server' : 'watchdog'}’s PID file names a live process, and warns about a unit that runs without its file`, async () => {
      const home = tempHome()
      const paths = pathsFor(home)
      mkdirSync(dirname(paths[file]), {recursive: true})
      writeFileSync(paths[file], `${process.pid}\n`)
      const asked: string[][] = []
      const systemctl = fakeSystemctl({ActiveState: 'active', SubState: 'running', Result: 'success', MainPID: process.pid}, paths.systemdServerUnit)
      const result = await backendIn(home, async (program, args, options) => {
        asked.push([program, ...args])
        return systemctl(program, args, options)
      }).status()
      expect(asked.map((call) => call.slice(0, 3))).to.deep.equal([['systemctl', '--user', 'show']])
      expect(result).to.deep.include({installed: false})
      expect(result.warnings).to.deep.equal([`Warning: amplifier-distro.service is active but its unit file ${paths.systemdServerUnit} is gone.\n  Run: amp-distro service uninstall`])
    })
  }
})

describe('systemd status: what it tells beyond the units’ state', () => {
  let http: HttpServer | undefined

  afterEach(async () => {
    await closeServer(http)
    http = undefined
    await cleanup()
  })

  /** A home with the server unit installed for `port`, and status run against a fake manager. */
  function installed(port: number, options: {bin?: string; context?: Partial<ServiceContext>; prepare?: (manager: FakeManager) => void; socket?: boolean} = {}) {
    const home = tempHome()
    const paths = pathsFor(home)
    mkdirSync(paths.systemdUserDir, {recursive: true})
    writeFileSync(paths.systemdServerUnit, renderServerUnit({bin: options.bin ?? RUN_JS, host: '127.0.0.1', port, path: `${dirname(process.execPath)}:/usr/bin:/bin`, home}))
    if (options.socket !== false) writeFileSync(paths.systemdSocketUnit, renderSocketUnit({port}, '127.0.0.1'))
    const manager = new FakeManager()
    options.prepare?.(manager)
    const backend = createSystemdBackend({
      home,
      env: {},
      uid: 1000,
      user: 'ada',
      exec: manager.exec,
      stream: manager.stream,
      version: '0.3.0',
      nodePath: process.execPath,
      resolveBinary: () => ({path: RUN_JS}),
      ...options.context,
    })
    return {home, paths, manager, status: () => backend.status()}
  }

  /** A real server answering health as `serve` does, with the given version and the fake's main PID. */
  async function healthAnswering(version: string): Promise<number> {
    http = createHttpServer((_req, res) => {
      res.writeHead(200, {'content-type': 'application/json'})
      res.end(JSON.stringify({status: 'ok', version, pid: 5000, uptimeSeconds: 3725}))
    })
    await new Promise<void>((resolve) => http!.listen({host: '127.0.0.1', port: 0}, resolve))
    return (http.address() as {port: number}).port
  }

  const running = (manager: FakeManager) => {
    manager.units['amplifier-distro.service'] = {ActiveState: 'active', SubState: 'running', Result: 'success', MainPID: 5000}
    manager.units['amplifier-distro.socket'] = {ActiveState: 'active', SubState: 'running', Result: 'success', MainPID: 0}
  }

  it('shows the socket beside the server, as text and in the JSON', async () => {
    const result = await installed(await healthAnswering('0.3.0'), {prepare: running}).status()
    expect(result.details).to.include.members(['Server:   active (running), PID 5000 (amplifier-distro.service)', 'Socket:   active (running) (amplifier-distro.socket)'])
    expect(result.socket).to.deep.equal({installed: true, state: 'active'})
  })

  it('an install from before the socket: says to run install again for zero-downtime restarts', async () => {
    const port = await healthAnswering('0.3.0')
    const result = await installed(port, {prepare: running, socket: false}).status()
    expect(result.socket).to.deep.equal({installed: false, state: 'not-installed'})
    expect(result.details).to.include('Socket:   not installed (amplifier-distro.socket)')
    expect(result.warnings).to.deep.equal([
      [
        'Warning: installed without amplifier-distro.socket, so connections are refused while the server restarts.',
        `  For zero-downtime restarts, run install again: amp-distro service install --host 127.0.0.1 --port ${port}`,
      ].join('\n'),
    ])
  })

  it('a socket that failed for resources is a port conflict: names the port and the program holding it', async () => {
    const {port} = await holdPort()
    const result = await installed(port, {
      prepare: (manager) => (manager.units['amplifier-distro.socket'] = {ActiveState: 'failed', SubState: 'failed', Result: 'resources', MainPID: 0}),
    }).status()
    expect(result.socket).to.deep.equal({installed: true, state: 'failed'})
    const owner = `${readFileSync(`/proc/${process.pid}/comm`, 'utf8').trim()} (PID ${process.pid})`
    expect(result.warnings).to.deep.equal([
      [
        `Warning: 127.0.0.1:${port} is in use by ${owner}, so the server cannot listen there. (amplifier-distro.socket failed: resources)`,
        `  See which program: ss -ltnp 'sport = :${port}'`,
        '  Stop that program, or install on another port: amp-distro service install --port <port>',
        '  Then: amp-distro service start',
      ].join('\n'),
    ])
  })

  for (const [unit, result] of [
    ['amplifier-distro.service', 'start-limit-hit'],
    ['amplifier-distro.socket', 'service-start-limit-hit'],
  ] as const) {
    it(`a start limit on ${unit} (${result}) says how to recover: reset-failed on both units, then start`, async () => {
      const status = await installed(await freePort(), {
        prepare: (manager) => (manager.units[unit] = {ActiveState: 'failed', SubState: 'failed', Result: result, MainPID: 0}),
      }).status()
      expect(status.warnings).to.have.length(1)
      expect(status.warnings[0]).to.include(`${unit}`)
      expect(status.warnings[0]).to.include(
        '\n  Recover: amp-distro service start (it forgets the failed state of both units first),\n' +
          '  or: systemctl --user reset-failed amplifier-distro.service amplifier-distro.socket, then systemctl --user start amplifier-distro.service',
      )
    })
  }

  it('a stopped service says stopped and how to start it, the logs command, and lingering off with the command to turn it on', async () => {
    const result = await installed(await freePort()).status()
    expect(result.details).to.include.members([
      'Server:   stopped (amplifier-distro.service)',
      'Start it: amp-distro service start',
      'Linger:   off (the service runs only while you are logged in)',
      '  To keep it running after logout and start it at boot: loginctl enable-linger ada (with sudo if that is refused)',
      'Logs:     amp-distro service logs',
    ])
    expect(result).to.include({linger: false, cliVersion: '0.3.0'})
    expect(result.server).to.deep.equal({installed: true, state: 'inactive'})
  })

  it('a running server of the same version: its version next to this one, its uptime, lingering on, no warning', async () => {
    const port = await healthAnswering('0.3.0')
    const result = await installed(port, {
      prepare(manager) {
        running(manager)
        manager.linger = 'yes'
      },
    }).status()
    expect(result.details).to.include.members(['Version:  0.3.0 (this amp-distro: 0.3.0)', 'Uptime:   1 h 2 min', 'Linger:   on (the service runs without a login session, and starts at boot)'])
    expect(result.health).to.deep.equal({url: `http://127.0.0.1:${port}/api/health`, healthy: true, pid: 5000, version: '0.3.0', uptimeSeconds: 3725})
    expect(result.warnings).to.deep.equal([])
  })

  it('a running server of another version: a warning to restart', async () => {
    const result = await installed(await healthAnswering('0.2.9'), {prepare: running}).status()
    expect(result.warnings).to.deep.equal([
      'Warning: the running server is version 0.2.9, this amp-distro is 0.3.0: the service runs the new files only once restarted.\n  Run: amp-distro service restart',
    ])
  })

  it('leaves lingering out where loginctl cannot tell', async () => {
    const result = await installed(await freePort(), {prepare: (manager) => (manager.linger = undefined)}).status()
    expect(result).to.not.have.property('linger')
    expect(result.details.join('\n')).to.not.include('Linger:')
  })

  it('names a configuration error (exit status 78) and the ExecStart line to fix', async () => {
    const {paths, status} = installed(await freePort(), {
      prepare(manager) {
        manager.units['amplifier-distro.service'] = {ActiveState: 'failed', SubState: 'failed', Result: 'exit-code', MainPID: 0, ExecMainStatus: 78}
        manager.journal = [journalEntry('amplifier-distro.service', 'amp-distro', 77, 'Invalid port: "99999". Use a whole number from 1 to 65535.', 1_796_000_000)]
      },
    })
    const lines = readFileSync(paths.systemdServerUnit, 'utf8').split('\n')
    const at = lines.findIndex((line) => line.startsWith('ExecStart='))
    const result = await status()
    expect(result.warnings).to.have.length(1)
    const [warning] = result.warnings
    expect(warning.split('\n')[0]).to.equal(
      'Warning: amplifier-distro.service exited with status 78: its command line or configuration can never work, so systemd does not restart it.',
    )
    expect(warning).to.match(/\n {2}It said: \S+ amp-distro\[77\]: Invalid port: "99999"\. Use a whole number from 1 to 65535\.\n/)
    expect(warning).to.include(`\n  The line to fix: ${paths.systemdServerUnit}, line ${at + 1}: ${lines[at]}\n`)
    expect(warning).to.include('Then: amp-distro service restart')
  })

  it('a hand-edited --port 99999 is reported, not asked over HTTP (no stack trace)', async () => {
    const {paths, status} = installed(await freePort(), {
      prepare: (manager) => (manager.units['amplifier-distro.service'] = {ActiveState: 'failed', SubState: 'failed', Result: 'exit-code', MainPID: 0, ExecMainStatus: 78}),
    })
    writeFileSync(paths.systemdServerUnit, readFileSync(paths.systemdServerUnit, 'utf8').replace(/"--port" "\d+"/, '"--port" "99999"'))
    const result = await status()
    expect(result.health).to.deep.equal({url: 'http://127.0.0.1:99999/api/health', healthy: false, reason: 'port 99999 is not a TCP port'})
    expect(result.warnings[0]).to.include('"--port" "99999"')
  })

  it('a failure with another exit status is the plain failed warning', async () => {
    const result = await installed(await freePort(), {
      prepare: (manager) => (manager.units['amplifier-distro.service'] = {ActiveState: 'failed', SubState: 'failed', Result: 'exit-code', MainPID: 0, ExecMainStatus: 1}),
    }).status()
    expect(result.warnings).to.have.length(1)
    expect(result.warnings[0]).to.match(/^Warning: amplifier-distro\.service has failed \(exit-code\)/)
  })

  it('warns about a deprecated binary and a missing executable even when the manager cannot be reached', async () => {
    const result = await installed(await freePort(), {bin: '/usr/local/bin/amp-distro-server', prepare: (manager) => (manager.reachable = false)}).status()
    expect(result).to.deep.include({success: false, message: 'Cannot read the service state: the systemd user manager is not reachable.'})
    expect(result.warnings).to.deep.equal([
      DEPRECATED_WARNING,
      "Warning: installed service's executable /usr/local/bin/amp-distro-server no longer exists.\n  Re-run: amp-distro service install",
    ])
  })

  const wsl: Array<[string, Partial<ServiceContext>, boolean]> = [
    ['a WSL kernel release', {osRelease: '5.15.153.1-microsoft-standard-WSL2'}, true],
    ['WSL_DISTRO_NAME', {env: {WSL_DISTRO_NAME: 'Ubuntu'}, osRelease: '6.1.0-18-amd64'}, true],
    ['a plain Linux', {osRelease: '6.1.0-18-amd64'}, false],
  ]
  for (const [what, context, shown] of wsl) {
    it(`${shown ? 'tells' : 'does not tell'} about WSL's idle shutdown and vmIdleTimeout on ${what}`, async () => {
      const result = await installed(await freePort(), {context}).status()
      const note = result.details.filter((line) => line.includes('vmIdleTimeout') || line.includes('WSL shuts'))
      expect(note).to.have.length(shown ? 2 : 0)
      if (shown) expect(result.details).to.include('  See https://learn.microsoft.com/en-us/windows/wsl/wsl-config#main-wsl-settings')
    })
  }
})
