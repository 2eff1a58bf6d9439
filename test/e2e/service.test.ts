import {expect} from 'chai'
import {copyFileSync, cpSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {createServer} from 'node:net'
import {join} from 'node:path'

import {checkHealth} from '../../src/lib/server/health.js'
import {DEPRECATED_WARNING} from '../../src/lib/service/stale.js'
import {freePort, REPO as ROOT, RUN_JS as CLI} from '../helpers/cli.js'
import {SOCKET_UNIT} from '../../src/lib/service/drivers/systemd/unit.js'
import {expectOk, SERVER, unitDir, WATCHDOG} from './service-fixtures.js'
import {describeSystemd, type UserManager, waitFor} from './systemd-harness.js'

function healthy(port: number): () => Promise<boolean> {
  return async () => (await checkHealth(`http://127.0.0.1:${port}/api/health`, 2000)).healthy
}

/** Waits for the unit to run under a main PID other than `previous`, and returns it. */
function newMainPid(manager: UserManager, unit: string, previous = 0): Promise<number> {
  return waitFor(
    async () => {
      const {ActiveState, MainPID} = await manager.show(unit, ['ActiveState', 'MainPID'])
      const pid = Number(MainPID)
      return ActiveState === 'active' && pid > 0 && pid !== previous ? pid : undefined
    },
    {timeoutMs: 30_000, what: `${unit} to run under a new main PID (not ${previous})`},
  )
}

describeSystemd('service install, status and uninstall on a real systemd user manager', (ctx) => {
  let port: number
  let pid: number
  let watchdogPid: number
  const cli = (...args: string[]) => ctx().run(process.execPath, [CLI, ...args])
  const files = () => [SERVER, WATCHDOG, SOCKET_UNIT].map((unit) => join(unitDir(ctx()), unit))

  before(async () => {
    port = await freePort()
  })

  it('installs both units: active, healthy, unit files 0644, systemd-analyze verify silent', async () => {
    const manager = ctx()
    // The user's data must survive an uninstall.
    mkdirSync(join(manager.home, '.amplifier'), {recursive: true})
    writeFileSync(join(manager.home, '.amplifier', 'settings.yaml'), 'keep: me\n')

    const result = expectOk(await cli('service', 'install', '--port', String(port)))
    expect(result.stdout).to.match(/^Installed amplifier-distro\.service, amplifier-distro-watchdog\.service and amplifier-distro\.socket \(systemd user units\)\.\n/)
    pid = await newMainPid(manager, SERVER)
    watchdogPid = await newMainPid(manager, WATCHDOG)
    await waitFor(healthy(port), {timeoutMs: 30_000, what: 'the installed server to answer its health check'})

    for (const file of files()) expect(statSync(file).mode & 0o777).to.equal(0o644)
    expect(readFileSync(files()[0], 'utf8')).to.include(`ExecStart="${CLI}" "serve" "--host" "127.0.0.1" "--port" "${port}"`)
    expect(readFileSync(files()[1], 'utf8')).to.include(`ExecStart="${CLI}" "watchdog" "--host" "127.0.0.1" "--port" "${port}"`)
    for (const unit of [SERVER, WATCHDOG]) expect((await manager.systemctl('is-enabled', unit)).stdout.trim()).to.equal('enabled')
    const verify = await manager.run('systemd-analyze', ['verify', '--user', ...files()])
    expect(verify).to.deep.equal({code: 0, stdout: '', stderr: ''})
  })

  it('comes back healthy under a new PID after kill -9 of the server', async () => {
    process.kill(pid, 'SIGKILL')
    const next = await newMainPid(ctx(), SERVER, pid)
    await waitFor(healthy(port), {timeoutMs: 30_000, what: 'the restarted server to answer its health check'})
    expect(next).to.not.equal(pid)
    pid = next
    // PartOf= restarts the watchdog along with the server.
    watchdogPid = await newMainPid(ctx(), WATCHDOG)
  })

  it('status shows both units active, with PIDs and health, as text and as JSON', async () => {
    const text = expectOk(await cli('service', 'status'))
    expect(text.stderr).to.equal('')
    expect(text.stdout).to.include('amplifier-distro service is installed.\n')
    expect(text.stdout).to.include(`  Server:   active (running), PID ${pid} (${SERVER})\n`)
    expect(text.stdout).to.include(`  Watchdog: active (running), PID ${watchdogPid} (${WATCHDOG})\n`)
    expect(text.stdout).to.include(`  Health:   http://127.0.0.1:${port}/api/health healthy\n`)

    const json = JSON.parse(expectOk(await cli('service', 'status', '--json')).stdout)
    expect(json).to.deep.include({
      success: true,
      platform: 'linux',
      installed: true,
      server: {installed: true, state: 'active', pid},
      watchdog: {installed: true, state: 'active', pid: watchdogPid},
      warnings: [],
    })
    expect(json.health).to.deep.include({url: `http://127.0.0.1:${port}/api/health`, healthy: true})
  })

  it('re-install restarts the running units with the new definition', async () => {
    const other = await freePort()
    expectOk(await cli('service', 'install', '--port', String(other)))
    const next = await newMainPid(ctx(), SERVER, pid)
    await waitFor(healthy(other), {timeoutMs: 30_000, what: 'the server to answer on its new port'})
    expect(await healthy(port)()).to.equal(false)
    const watchdogNext = await newMainPid(ctx(), WATCHDOG, watchdogPid)
    expect(readFileSync(`/proc/${watchdogNext}/cmdline`, 'utf8').split('\0')).to.include(String(other))
    pid = next
    watchdogPid = watchdogNext
    port = other
  })

  it('status warns about a unit that references the deprecated amp-distro-server', async () => {
    const manager = ctx()
    const file = files()[0]
    const original = readFileSync(file, 'utf8')
    try {
      writeFileSync(file, original.replace(`ExecStart="${CLI}"`, 'ExecStart="/usr/local/bin/amp-distro-server"'))
      expectOk(await manager.systemctl('daemon-reload'))
      const result = expectOk(await cli('service', 'status'))
      expect(result.stderr).to.include(`${DEPRECATED_WARNING}\n`)
      expect(result.stderr).to.include(
        "Warning: installed service's executable /usr/local/bin/amp-distro-server no longer exists.\n  Re-run: amp-distro service install\n",
      )
      const json = JSON.parse(expectOk(await cli('service', 'status', '--json')).stdout)
      expect(json.warnings).to.include(DEPRECATED_WARNING)
    } finally {
      writeFileSync(file, original)
      await manager.systemctl('daemon-reload')
    }

    const clean = expectOk(await cli('service', 'status'))
    expect(clean.stderr).to.equal('')
  })

  it('refuses a --host carrying a newline and changes no file', async () => {
    const manager = ctx()
    const before = files().map((file) => readFileSync(file, 'utf8'))
    const marker = join(manager.home, 'injected')
    const result = await cli('service', 'install', '--host', `127.0.0.1\nExecStartPre=/bin/touch ${marker}`, '--port', String(port))
    expect(result.code).to.equal(1)
    expect(result.stderr).to.match(/^Failed: Invalid host: .* contains a control character\.\n/)
    expect(files().map((file) => readFileSync(file, 'utf8'))).to.deep.equal(before)
    expect(existsSync(marker)).to.equal(false)
    expect(await manager.mainPid(SERVER)).to.equal(pid)
  })

  it('uninstall removes everything but the data; a second uninstall still exits 0', async () => {
    const manager = ctx()
    const result = expectOk(await cli('service', 'uninstall'))
    expect(result.stdout).to.match(
      /^Uninstalled amplifier-distro service\.\n {2}Stopped and disabled amplifier-distro-watchdog\.service\n {2}Stopped amplifier-distro\.service and amplifier-distro\.socket; disabled amplifier-distro\.service\n/,
    )
    for (const unit of [SERVER, WATCHDOG, SOCKET_UNIT]) {
      expect(existsSync(join(unitDir(manager), unit))).to.equal(false)
      expect(existsSync(join(unitDir(manager), 'default.target.wants', unit))).to.equal(false)
      expect(await manager.show(unit, ['LoadState', 'ActiveState'])).to.deep.equal({LoadState: 'not-found', ActiveState: 'inactive'})
    }

    expect(await healthy(port)()).to.equal(false)
    expect(readFileSync(join(manager.home, '.amplifier', 'settings.yaml'), 'utf8')).to.equal('keep: me\n')

    const again = expectOk(await cli('service', 'uninstall'))
    expect(again.stdout).to.equal('amplifier-distro service is not installed; nothing to do.\n')
    const status = JSON.parse(expectOk(await cli('service', 'status', '--json')).stdout)
    expect(status).to.deep.include({success: true, installed: false, health: null})
  })
})

describeSystemd('service install when things go wrong', (ctx) => {
  const cli = (...args: string[]) => ctx().run(process.execPath, [CLI, ...args])

  it('fails clearly when the unit folder cannot be written, and enables nothing', async () => {
    const manager = ctx()
    // A file where the folder should be: even root cannot create units there.
    mkdirSync(join(manager.home, '.config'), {recursive: true})
    writeFileSync(join(manager.home, '.config', 'systemd'), 'not a folder\n')
    try {
      const result = await cli('service', 'install', '--port', String(await freePort()))
      expect(result.code).to.equal(1)
      expect(result.stderr).to.match(/^Failed: Cannot write unit files to .*\/\.config\/systemd\/user \((ENOTDIR|EEXIST)\); nothing was installed\.\n/)
      expect(await manager.show(SERVER, ['LoadState'])).to.deep.equal({LoadState: 'not-found'})
      expect(readFileSync(join(manager.home, '.config', 'systemd'), 'utf8')).to.equal('not a folder\n')
    } finally {
      rmSync(join(manager.home, '.config'), {recursive: true, force: true})
    }
  })

  it('enables lingering for the user, and reports a refusal as a note, not a failure', async () => {
    const manager = ctx()
    const fakeBin = mkdtempSync(join(tmpdir(), 'amp-distro-e2e-loginctl-'))
    const calls = join(fakeBin, 'calls.log')
    const withLoginctl = async (exitCode: number) => {
      writeFileSync(join(fakeBin, 'loginctl'), `#!/bin/sh\necho "$*" >> '${calls}'\necho 'linger refused' >&2\nexit ${exitCode}\n`, {mode: 0o755})
      return manager.run(process.execPath, [CLI, 'service', 'install', '--port', String(await freePort()), '--no-watchdog'], {
        env: {PATH: `${fakeBin}:${manager.env.PATH}`},
      })
    }

    try {
      const refused = expectOk(await withLoginctl(1))
      expect(refused.stdout).to.include('  Note: could not enable lingering (linger refused); the service starts when you log in, not at boot.\n')
      expect(refused.stdout).to.include('    To start it at boot: sudo loginctl enable-linger root\n')
      const granted = expectOk(await withLoginctl(0))
      expect(granted.stdout).to.not.include('Note:')
      expect(readFileSync(calls, 'utf8')).to.equal('enable-linger root\nenable-linger root\n')
    } finally {
      expectOk(await cli('service', 'uninstall'))
      rmSync(fakeBin, {recursive: true, force: true})
    }
  })

  it('a port taken at install: the socket fails, status names the port and how to recover, and start then serves', async function () {
    this.timeout(150_000)
    const manager = ctx()
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const {port} = blocker.address() as {port: number}
    try {
      // --wait 0: install returns once systemd accepted the units instead of reporting the held port.
      expectOk(await cli('service', 'install', '--port', String(port), '--no-watchdog', '--wait', '0'))
      await waitFor(async () => (await manager.show(SOCKET_UNIT, ['ActiveState'])).ActiveState === 'failed', {
        timeoutMs: 60_000,
        intervalMs: 250,
        what: 'the socket to fail on the taken port',
      })
      const result = expectOk(await cli('service', 'status'))
      expect(result.stdout).to.include(`  Socket:   failed (resources) (${SOCKET_UNIT})\n`)
      expect(result.stderr).to.include(`Warning: 127.0.0.1:${port} is in use by `)
      expect(result.stderr).to.include('  Then: amp-distro service start')
      const json = JSON.parse(expectOk(await cli('service', 'status', '--json')).stdout)
      expect(json.socket).to.deep.equal({installed: true, state: 'failed'})
      expect(json.health).to.deep.include({healthy: false})
    } finally {
      // Stops listening at once; the callback would wait for the probes' connections, which nothing reads.
      blocker.close()
    }

    // The advice works: with the port free, start brings the socket and the server back.
    expectOk(await cli('service', 'start'))
    expect(await healthy(port)()).to.equal(true)

    // Uninstall forgets the failed state too.
    expectOk(await cli('service', 'uninstall'))
    expect(await manager.show(SOCKET_UNIT, ['LoadState', 'ActiveState'])).to.deep.equal({LoadState: 'not-found', ActiveState: 'inactive'})
  })
})

describeSystemd('service status and uninstall with units changed by hand', (ctx) => {
  const cli = (...args: string[]) => ctx().run(process.execPath, [CLI, ...args])

  it('status warns about a unit file systemd cannot load', async () => {
    const manager = ctx()
    const file = join(unitDir(manager), SERVER)
    mkdirSync(unitDir(manager), {recursive: true})
    writeFileSync(file, '[Unit]\nDescription=no command\n\n[Service]\nType=simple\n')
    expectOk(await manager.systemctl('daemon-reload'))
    const result = expectOk(await cli('service', 'status'))
    expect(result.stderr).to.equal(`Warning: systemd reports ${SERVER} as bad-setting: it cannot use ${file}.\n  Re-run: amp-distro service install\n`)
    expectOk(await cli('service', 'uninstall'))
    expect(existsSync(file)).to.equal(false)
  })

  it('status warns about a server still running after its unit file was deleted, and uninstall stops it', async () => {
    const manager = ctx()
    const port = await freePort()
    expectOk(await cli('service', 'install', '--port', String(port), '--no-watchdog'))
    const pid = await newMainPid(manager, SERVER)
    await waitFor(healthy(port), {timeoutMs: 30_000, what: 'the server to answer its health check'})
    const file = join(unitDir(manager), SERVER)
    rmSync(file)
    expectOk(await manager.systemctl('daemon-reload'))

    const status = expectOk(await cli('service', 'status', '--json'))
    const json = JSON.parse(status.stdout)
    expect(json).to.deep.include({installed: false})
    expect(json.warnings).to.deep.equal([`Warning: ${SERVER} is active but its unit file ${file} is gone.\n  Run: amp-distro service uninstall`])

    const result = expectOk(await cli('service', 'uninstall'))
    expect(result.stdout).to.include(`  Stopped ${SERVER}\n`)
    expect(result.stdout).to.include(`  Removed ${join(unitDir(manager), SOCKET_UNIT)}\n`)
    await waitFor(async () => !existsSync(`/proc/${pid}`) || (await manager.show(SERVER, ['ActiveState'])).ActiveState === 'inactive', {
      timeoutMs: 30_000,
      what: 'the orphaned server to stop',
    })
    expect(await healthy(port)()).to.equal(false)
  })
})

describeSystemd('service install with the watchdog unit', (ctx) => {
  it('enables both units and ties the watchdog to the server with After=, Wants= and PartOf=', async () => {
    const manager = ctx()
    const port = await freePort()
    expectOk(await manager.run(process.execPath, [CLI, 'service', 'install', '--port', String(port)]))
    await newMainPid(manager, SERVER)
    for (const unit of [SERVER, WATCHDOG]) expect((await manager.systemctl('is-enabled', unit)).stdout.trim()).to.equal('enabled')
    const props = await manager.show(WATCHDOG, ['After', 'Wants', 'PartOf', 'Restart'])
    expect(props.After.split(' ')).to.include(SERVER)
    expect(props.Wants.split(' ')).to.include(SERVER)
    expect(props.PartOf).to.equal(SERVER)
    expect(props.Restart).to.equal('always')
    const files = [SERVER, WATCHDOG, SOCKET_UNIT].map((unit) => join(unitDir(manager), unit))
    expect(await manager.run('systemd-analyze', ['verify', '--user', ...files])).to.deep.equal({code: 0, stdout: '', stderr: ''})

    // install --no-watchdog over it removes the watchdog unit.
    expectOk(await manager.run(process.execPath, [CLI, 'service', 'install', '--port', String(port), '--no-watchdog']))
    expect(existsSync(files[1])).to.equal(false)
    expect((await manager.show(WATCHDOG, ['LoadState'])).LoadState).to.equal('not-found')
    expectOk(await manager.run(process.execPath, [CLI, 'service', 'uninstall']))
  })
})

describeSystemd('service install from a path with spaces, run by a Node outside systemd’s PATH', (ctx) => {
  let dir: string

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'amp-distro-e2e-copy-'))
  })

  after(() => rmSync(dir, {recursive: true, force: true}))

  it('runs the copied CLI under that Node', async () => {
    const manager = ctx()
    // A copy of the built CLI in a folder whose name needs every kind of quoting.
    const copy = join(dir, 'amp distro 100% $HOME')
    mkdirSync(copy)
    for (const part of ['bin', 'dist', 'package.json', 'oclif.manifest.json']) cpSync(join(ROOT, part), join(copy, part), {recursive: true})
    symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'))
    // A Node that systemd's default PATH does not have (a hard link when possible: same file, new path).
    const nodeDir = join(dir, 'my node', 'bin')
    const node = join(nodeDir, 'node')
    mkdirSync(nodeDir, {recursive: true})
    try {
      linkSync(process.execPath, node)
    } catch {
      copyFileSync(process.execPath, node)
    }

    const port = await freePort()
    const cliCopy = join(copy, 'bin', 'run.js')
    const result = await manager.run(node, [cliCopy, 'service', 'install', '--port', String(port), '--no-watchdog'])
    expect(result.code, result.stderr).to.equal(0)
    const unit = readFileSync(join(unitDir(manager), SERVER), 'utf8')
    expect(unit).to.include(`ExecStart="${cliCopy.replaceAll('%', '%%')}" "serve"`)
    expect(unit).to.include(`Environment="PATH=${nodeDir}:`)

    const pid = await newMainPid(manager, SERVER)
    await waitFor(healthy(port), {timeoutMs: 30_000, what: 'the copied server to answer its health check'})
    expect(readlinkSync(`/proc/${pid}/exe`)).to.equal(node)
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).to.include(cliCopy)

    const status = JSON.parse((await manager.run(node, [cliCopy, 'service', 'status', '--json'])).stdout)
    expect(status).to.deep.include({installed: true, warnings: []})

    // That Node goes away (an nvm upgrade, say): status names the missing folder.
    rmSync(join(dir, 'my node'), {recursive: true})
    const drift = expectOk(await manager.run(process.execPath, [cliCopy, 'service', 'status']))
    expect(drift.stderr).to.equal(`Warning: installed service's Node folder ${nodeDir} no longer exists.\n  Re-run: amp-distro service install\n`)
    expectOk(await manager.run(process.execPath, [cliCopy, 'service', 'uninstall']))
  })
})
