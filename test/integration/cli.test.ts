import {expect} from 'chai'
import {spawn} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {arch} from 'node:os'
import {join} from 'node:path'
import {stripVTControlCharacters} from 'node:util'

import {cleanup, envFor, freePort, hasStackTrace, PACKAGE, RUN_JS, runCli, runOclif, tempHome} from '../helpers/cli.js'
import {startServe} from '../helpers/processes.js'

/** What an equivalence case may use: a fresh home, a port held by a running server and its home, a free port. */
interface Context {
  home: string
  busyPort: number
  runningHome: string
  freePort: number
}

/**
 * Invocations that must behave identically through bin/run.js (which may take
 * the fast path) and through oclif itself: same stdout, stderr and exit code.
 * Add a command by adding a line.
 */
const SAME_EITHER_WAY: Array<[string, (ctx: Context) => string[], {home?: 'running'}?]> = [
  ['--version', () => ['--version']],
  ['-v (not a version flag in oclif)', () => ['-v']],
  ['--help', () => ['--help']],
  ['serve with a non-numeric port', () => ['serve', '--port', 'abc']],
  ['serve with a port out of range', () => ['serve', '--port=65536']],
  ['serve with a newline in the host', () => ['serve', '--host', 'a\nb']],
  ['serve with an invalid hostname', () => ['serve', '--host', 'bad_host!']],
  ['serve on a port in use', (ctx) => ['serve', '--port', String(ctx.busyPort)]],
  ['serve while another serve runs for the same home', (ctx) => ['serve', '--port', String(ctx.freePort)], {home: 'running'}],
  ['serve with a repeated flag', () => ['serve', '--port', '1', '--port', 'abc']],
  ['serve with a flag missing its value', () => ['serve', '--port']],
  ['serve with an unknown flag', () => ['serve', '--bogus']],
  ['serve with an extra argument', () => ['serve', 'extra']],
  ['serve --help', () => ['serve', '--help']],
  ['service status', () => ['service', 'status']],
  ['service status --json', () => ['service', 'status', '--json']],
  ['service uninstall with nothing installed', () => ['service', 'uninstall']],
  ['service uninstall --json', () => ['service', 'uninstall', '--json']],
  ['service install --dry-run', () => ['service', 'install', '--dry-run']],
  ['service install --dry-run --no-watchdog on another port', () => ['service', 'install', '--dry-run', '--no-watchdog', '--port', '8500']],
  ['service install --dry-run --json', () => ['service', 'install', '--dry-run', '--json']],
  ['service install --dry-run with a port out of range', () => ['service', 'install', '--dry-run', '--port', '0']],
  ['service install with both --watchdog and --no-watchdog', () => ['service', 'install', '--dry-run', '--watchdog', '--no-watchdog']],
  ['service install with an unknown flag', () => ['service', 'install', '--bogus']],
  ['service install --help', () => ['service', 'install', '--help']],
]

/**
 * Runs the built CLI on a pseudo-terminal (util-linux's `script`), typing
 * `answer` and Enter once the output shows `prompt`; resolves with everything it printed,
 * without colours.
 */
function onTerminal(args: string[], prompt: string, answer: string, env: NodeJS.ProcessEnv): Promise<{code: number | null; output: string}> {
  const command = [process.execPath, RUN_JS, ...args].map((word) => `'${word}'`).join(' ')
  const child = spawn('script', ['-qefc', command, '/dev/null'], {env, stdio: ['pipe', 'pipe', 'pipe']})
  let output = ''
  let answered = false
  const plain = () => output.replaceAll(new RegExp(String.raw`${String.fromCharCode(27)}\[[0-9;?]*[A-Za-z]`, 'g'), '')
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk
    if (!answered && plain().includes(prompt)) {
      answered = true
      child.stdin.write(`${answer}\r`)
    }
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({code, output: plain()})
    }),
  )
}

describe('amp-distro CLI (built, real processes)', function () {
  this.timeout(90_000)

  after(cleanup)

  it(`--version prints ${PACKAGE.name}/${PACKAGE.version} with platform, arch and node`, async () => {
    const done = await runCli(['--version'])
    expect(PACKAGE.version).to.equal('0.3.0')
    expect(done.code).to.equal(0)
    expect(done.stdout).to.match(new RegExp(`^amp-distro/0\\.3\\.0 (${process.platform}|wsl)-${arch()} node-${process.version.replaceAll('.', '\\.')}\\n$`))
    expect(done.stderr).to.equal('')
  })

  it('--help lists serve with its summary, and neither the watchdog nor the deprecated binary', async () => {
    const done = await runCli(['--help'])
    expect(done.code).to.equal(0)
    expect(done.stdout).to.match(/^ {2}serve +Run the Amplifier distro server in the foreground\.$/m)
    expect(done.stdout).to.include('$ amp-distro [COMMAND]')
    expect(done.stdout).not.to.include('amp-distro-server')
    expect(done.stdout, 'the watchdog is infrastructure and stays hidden').not.to.match(/^ {2}watchdog\b/m)
  })

  it('serve --help documents --host and --port with their defaults', async () => {
    const done = await runCli(['serve', '--help'])
    expect(done.code).to.equal(0)
    expect(done.stdout).to.match(/--host=<value>\s+\[default: 127\.0\.0\.1\]/)
    expect(done.stdout).to.match(/--port=<value>\s+\[default: 8400\]/)
  })

  describe('mistyped commands (@oclif/plugin-not-found)', () => {
    for (const [typed, meant] of [
      [['serv'], 'serve'],
      [['service', 'instal'], 'service install'],
    ] as const) {
      it(`asks on a terminal whether ${typed.join(' ')} meant ${meant}, and exits 127 when told no`, async () => {
        const done = await onTerminal([...typed], '(Y/n)', 'n', envFor(tempHome()))
        expect(done.output).to.include(`${typed.join(' ')} is not a amp-distro command.`)
        expect(done.output).to.include(`Did you mean ${meant}?`)
        expect(done.code).to.equal(127)
      })
    }

    it('runs the suggested command when told yes', async () => {
      const done = await onTerminal(['service', 'statu', '--json'], '(Y/n)', 'y', envFor(tempHome()))
      expect(done.output).to.include('Did you mean service status?')
      expect(done.output).to.include('"state": "not-installed"')
      expect(done.code).to.equal(0)
    })

    it('without a terminal, says the command does not exist and where the list is, exit 127, no stack trace', async () => {
      const done = await runCli(['serv'], {env: envFor(tempHome())})
      expect(done.code).to.equal(127)
      // The plugin colours the command it names where it assumes colours work (as under CI=true).
      const stderr = stripVTControlCharacters(done.stderr)
      expect(stderr).to.include('serv is not a amp-distro command.')
      expect(stderr).to.include('Run amp-distro help for a list of available commands.')
      expect(hasStackTrace(done.stderr)).to.equal(false)
    })
  })

  describe('shell completion (@oclif/plugin-autocomplete)', () => {
    const functions = {bash: 'bash/amp-distro.bash', zsh: 'zsh/_amp-distro', powershell: 'powershell/amp-distro.ps1'}
    for (const [shell, file] of Object.entries(functions)) {
      it(`autocomplete ${shell} prints the set-up steps and writes a completion of the commands and their flags`, async () => {
        const home = tempHome()
        const done = await runCli(['autocomplete', shell], {env: envFor(home)})
        expect(done.code, done.stderr).to.equal(0)
        expect(done.stdout).to.include(`amp-distro autocomplete script ${shell}`)
        const completion = readFileSync(join(home, '.cache', 'amplifier-distro', 'autocomplete', 'functions', file), 'utf8')
        expect(completion).to.include('serve').and.to.include('service').and.to.include('install').and.to.include('port')
      })
    }

    it('refuses another shell with a one-line message and a non-zero exit', async () => {
      const done = await runCli(['autocomplete', 'fish'], {env: envFor(tempHome())})
      expect(done.code).to.equal(2)
      expect(done.stderr).to.include('Expected fish to be one of: zsh, bash, powershell')
      expect(hasStackTrace(done.stderr)).to.equal(false)
    })
  })

  describe('bin/run.js (fast path) and oclif give identical results', () => {
    let ctx: Context

    before(async () => {
      const runningHome = tempHome()
      const busyPort = await freePort()
      await startServe({home: runningHome, port: busyPort})
      ctx = {home: tempHome(), busyPort, runningHome, freePort: await freePort()}
    })

    for (const [what, args, options] of SAME_EITHER_WAY) {
      it(what, async () => {
        const env = envFor(options?.home === 'running' ? ctx.runningHome : ctx.home)
        const fast = await runCli(args(ctx), {env})
        const oclif = await runOclif(args(ctx), {env})
        expect(fast.stdout).to.equal(oclif.stdout)
        expect(fast.stderr).to.equal(oclif.stderr)
        expect(fast.code).to.equal(oclif.code)
        expect(fast.stdout + fast.stderr).not.to.equal('')
      })
    }
  })
})
