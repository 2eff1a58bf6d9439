import {expect} from 'chai'
import {arch} from 'node:os'

import {cleanup, envFor, freePort, PACKAGE, runCli, runOclif, startServe, tempHome} from '../helpers/cli.js'

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

  describe('bin/run.js (fast path) and oclif give identical results', () => {
    let ctx: Context

    before(async () => {
      const runningHome = tempHome()
      const busyPort = await freePort()
      await startServe(runningHome, busyPort)
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
