import {expect} from 'chai'
import {execFile} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const CLI = fileURLToPath(new URL('../../bin/run.js', import.meta.url))

interface Run {
  code: number
  stdout: string
  stderr: string
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], {env, encoding: 'utf8', timeout: 30_000}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr})
    })
  })
}

function tree(dir: string): string[] {
  return readdirSync(dir, {recursive: true, encoding: 'utf8'}).sort()
}

/** Files (not folders) under `dir`: an install that failed must leave none, and no unit folder either. */
function leftBehind(dir: string): string[] {
  return readdirSync(dir, {recursive: true, withFileTypes: true})
    .filter((entry) => !entry.isDirectory() || entry.name === 'systemd')
    .map((entry) => join(entry.parentPath, entry.name))
}

describe('service commands through the built CLI (no user manager)', function () {
  this.timeout(60_000)
  let dir: string
  let home: string
  let fakeBin: string
  let calls: string
  let env: NodeJS.ProcessEnv

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'amp-distro-service-cli-'))
    home = join(dir, 'home')
    fakeBin = join(dir, 'fake-bin')
    calls = join(dir, 'calls.log')
    mkdirSync(home)
    mkdirSync(fakeBin)
    // Recorders standing in for systemctl and loginctl: any call at all is a failure of these tests.
    for (const name of ['systemctl', 'loginctl']) {
      writeFileSync(join(fakeBin, name), `#!/bin/sh\necho "${name} $*" >> '${calls}'\nexit 0\n`)
      chmodSync(join(fakeBin, name), 0o755)
    }

    env = {HOME: home, PATH: `${fakeBin}:/usr/bin:/bin`, LANG: 'C.UTF-8'}
  })

  afterEach(() => rmSync(dir, {recursive: true, force: true}))

  it('install --dry-run prints every file and command and changes nothing', async () => {
    const result = await run(['service', 'install', '--dry-run', '--port', '8765'], env)
    expect(result.stderr).to.equal('')
    expect(result.code).to.equal(0)
    const serverUnit = join(home, '.config', 'systemd', 'user', 'amplifier-distro.service')
    const watchdogUnit = join(home, '.config', 'systemd', 'user', 'amplifier-distro-watchdog.service')
    expect(result.stdout).to.include(`write ${serverUnit} (mode 0644):`)
    expect(result.stdout).to.include(`write ${watchdogUnit} (mode 0644):`)
    expect(result.stdout).to.include(`    ExecStart="${CLI}" "serve" "--host" "127.0.0.1" "--port" "8765"`)
    expect(result.stdout).to.include(`    ExecStart="${CLI}" "watchdog" "--host" "127.0.0.1" "--port" "8765"`)
    expect(result.stdout).to.include('    WantedBy=default.target')
    for (const command of [
      'systemctl --user daemon-reload',
      'systemctl --user try-restart --no-block amplifier-distro.service amplifier-distro-watchdog.service',
      'systemctl --user enable --now --no-block amplifier-distro.service',
      'systemctl --user enable --now --no-block amplifier-distro-watchdog.service',
      'loginctl enable-linger',
    ]) {
      expect(result.stdout).to.include(`run: ${command}`)
    }

    expect(tree(home)).to.deep.equal([])
    expect(existsSync(calls)).to.equal(false)
  })

  it('install --dry-run --no-watchdog plans the server alone', async () => {
    const result = await run(['service', 'install', '--dry-run', '--no-watchdog', '--json'], env)
    expect(result.code).to.equal(0)
    const json = JSON.parse(result.stdout) as {success: boolean; platform: string; details: string[]}
    expect(json).to.include({success: true, platform: 'linux'})
    // Neither the watchdog unit nor its command (a checkout's own path may contain the word).
    expect(json.details.join('\n')).to.not.include('amplifier-distro-watchdog')
    expect(json.details.join('\n')).to.not.include('"watchdog"')
    expect(tree(home)).to.deep.equal([])
  })

  it('install --dry-run --no-watchdog over an installed watchdog says it would remove it, and keeps it', async () => {
    const watchdogUnit = join(home, '.config', 'systemd', 'user', 'amplifier-distro-watchdog.service')
    mkdirSync(join(watchdogUnit, '..'), {recursive: true})
    writeFileSync(watchdogUnit, '[Service]\nExecStart=/bin/true\n')
    const result = await run(['service', 'install', '--dry-run', '--no-watchdog'], env)
    expect(result.code).to.equal(0)
    expect(result.stdout).to.include(`  run: systemctl --user disable --now amplifier-distro-watchdog.service\n  remove: ${watchdogUnit}\n`)
    expect(tree(join(home, '.config', 'systemd', 'user'))).to.deep.equal(['amplifier-distro-watchdog.service'])
    expect(existsSync(calls)).to.equal(false)
  })

  it('refuses a --host carrying a newline before writing or running anything', async () => {
    const result = await run(['service', 'install', '--host', '127.0.0.1\nExecStartPre=/bin/sh -c "touch /tmp/x"'], env)
    expect(result.code).to.equal(1)
    expect(result.stdout).to.equal('')
    expect(result.stderr).to.match(/^Failed: Invalid host: .* contains a control character\.\n$/)
    expect(tree(home)).to.deep.equal([])
    expect(existsSync(calls)).to.equal(false)
  })

  it('refuses an invalid --port, as serve does', async () => {
    const result = await run(['service', 'install', '--port', '70000', '--json'], env)
    expect(result.code).to.equal(1)
    expect(JSON.parse(result.stdout)).to.include({success: false, platform: 'linux'})
    expect(tree(home)).to.deep.equal([])
  })

  for (const [command, verb] of [
    ['start', 'start'],
    ['stop', 'stop'],
    ['restart', 'restart'],
    ['logs', 'show logs of'],
  ] as const) {
    it(`${command} with nothing installed exits 1 naming amp-distro service install, and runs nothing`, async () => {
      const result = await run(['service', command], env)
      expect(result).to.deep.equal({
        code: 1,
        stdout: '',
        stderr: `Failed: amplifier-distro service is not installed, so there is nothing to ${verb}.\n  Install it: amp-distro service install\n`,
      })
      const json = await run(['service', command, '--json'], env)
      expect(json.code).to.equal(1)
      expect(JSON.parse(json.stdout)).to.include({success: false, platform: 'linux'})
      expect(existsSync(calls)).to.equal(false)
    })
  }

  const badFlags: Array<[string[], string]> = [
    [['service', 'start', '--wait', 'soon'], 'Failed: Invalid --wait: "soon". Use a whole number of at least 0.\n'],
    [['service', 'restart', '--wait', '-1'], 'Failed: Invalid --wait: "-1". Use a whole number of at least 0.\n'],
    [['service', 'install', '--wait', '1.5'], 'Failed: Invalid --wait: "1.5". Use a whole number of at least 0.\n'],
    [['service', 'logs', '--lines', 'all'], 'Failed: Invalid --lines: "all". Use a whole number of at least 0.\n'],
  ]
  for (const [args, message] of badFlags) {
    it(`refuses ${args.slice(1).join(' ')} with one line and exit 1, running nothing`, async () => {
      expect(await run(args, env)).to.deep.equal({code: 1, stdout: '', stderr: message})
      expect(existsSync(calls)).to.equal(false)
    })
  }

  it('logs --follow --json is refused by oclif with one message and exit 2, not a JSON dump', async () => {
    const result = await run(['service', 'logs', '--follow', '--json'], env)
    expect(result.code).to.equal(2)
    expect(result.stdout).to.equal('')
    expect(result.stderr).to.include('--json=true cannot also be provided when using --follow')
    expect(result.stderr).to.not.include('"oclif"')
    expect(existsSync(calls)).to.equal(false)
  })

  describe('with a real systemctl and no user manager', () => {
    let runtime: string

    beforeEach(() => {
      runtime = join(dir, 'runtime')
      mkdirSync(runtime, {mode: 0o700})
      // A runtime directory with no manager bus in it: systemctl --user answers "Failed to connect to bus".
      env = {HOME: home, PATH: '/usr/bin:/bin', XDG_RUNTIME_DIR: runtime, LANG: 'C.UTF-8'}
    })

    it('install fails clearly and leaves nothing behind', async () => {
      const result = await run(['service', 'install'], env)
      expect(result.code).to.equal(1)
      expect(result.stderr).to.match(/^Failed: systemd user manager is not reachable; nothing was installed\.\n/)
      expect(result.stderr).to.include('Failed to connect to bus')
      expect(result.stderr).to.include('/etc/wsl.conf')
      expect(leftBehind(home)).to.deep.equal([])
    })

    it('status says not installed and exits 0', async () => {
      const result = await run(['service', 'status', '--json'], env)
      expect(result.code).to.equal(0)
      expect(JSON.parse(result.stdout)).to.deep.include({success: true, platform: 'linux', installed: false, health: null, warnings: []})
    })

    it('status still warns about a unit naming the deprecated binary, read from the unit file', async () => {
      const units = join(home, '.config', 'systemd', 'user')
      mkdirSync(units, {recursive: true})
      writeFileSync(join(units, 'amplifier-distro.service'), '[Service]\nExecStart=/usr/local/bin/amp-distro-server --port 8400\n')
      const result = await run(['service', 'status'], env)
      expect(result.code).to.equal(1)
      expect(result.stderr).to.match(/^Failed: Cannot read the service state: the systemd user manager is not reachable\.\n/)
      expect(result.stderr).to.include("Warning: installed service references deprecated 'amp-distro-server'.\n  Run: amp-distro service uninstall && amp-distro service install\n")
      expect(result.stderr).to.include("Warning: installed service's executable /usr/local/bin/amp-distro-server no longer exists.\n")
    })

    it('uninstall with nothing installed exits 0 and says so', async () => {
      const result = await run(['service', 'uninstall'], env)
      expect(result).to.deep.equal({code: 0, stdout: 'amplifier-distro service is not installed; nothing to do.\n', stderr: ''})
    })

    it('uninstall refuses to remove units it cannot stop', async () => {
      const units = join(home, '.config', 'systemd', 'user')
      mkdirSync(units, {recursive: true})
      writeFileSync(join(units, 'amplifier-distro.service'), '[Service]\nExecStart=/bin/true\n')
      const result = await run(['service', 'uninstall'], env)
      expect(result.code).to.equal(1)
      expect(result.stderr).to.match(/^Failed: systemd user manager is not reachable; cannot stop the service, nothing was removed\./)
      expect(existsSync(join(units, 'amplifier-distro.service'))).to.equal(true)
    })
  })

  describe('without systemctl on PATH', () => {
    it('install fails saying systemd is missing, and writes nothing', async () => {
      const empty = join(dir, 'empty')
      mkdirSync(empty)
      const result = await run(['service', 'install'], {...env, PATH: empty})
      expect(result.code).to.equal(1)
      expect(result.stderr).to.include('systemctl was not found on PATH')
      expect(leftBehind(home)).to.deep.equal([])
    })
  })
})
