import {expect} from 'chai'
import {type ChildProcess, spawn} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {delimiter, join} from 'node:path'

import {checkHealth} from '../../src/lib/server/health.js'
import {cleanup, envFor, exitOf, freePort, runCli, tempHome, waitFor} from '../helpers/cli.js'
import {globalInstall, listFiles, packageTarball, pathWithoutAmpDistro, requireBuild, scratchDir} from '../helpers/pack.js'

interface Done {
  code: number | null
  stdout: string
  stderr: string
}

/** `npx --yes --package=<tarball> -- amp-distro …args` with its own npm cache; in its own process group. */
function npx(cache: string, args: string[], env: NodeJS.ProcessEnv): {child: ChildProcess; done: Promise<Done>} {
  const child = spawn('npx', ['--yes', '--cache', cache, `--package=${packageTarball()}`, '--', 'amp-distro', ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()))
  const done = (async () => {
    const {code} = await exitOf(child)
    await closed
    return {code, stdout, stderr}
  })()
  return {child, done}
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal)
  } catch {
    // the group is gone already
  }
}

describe('npx amp-distro (from the packed tarball, clean npm caches)', function () {
  this.timeout(240_000)
  const groups: ChildProcess[] = []

  before(requireBuild)

  after(async () => {
    for (const child of groups) killGroup(child, 'SIGKILL')
    await cleanup()
  })

  function run(args: string[], env: NodeJS.ProcessEnv): Promise<Done> {
    const started = npx(scratchDir('amp-npx-cache-'), args, env)
    groups.push(started.child)
    return started.done
  }

  it('serve runs the package from <cache>/_npx/<16 hex>/node_modules and stops cleanly on SIGTERM', async () => {
    const home = tempHome()
    const cache = scratchDir('amp-npx-cache-')
    const port = await freePort()
    const {child, done} = npx(cache, ['serve', '--port', String(port)], envFor(home, {PATH: pathWithoutAmpDistro()}))
    groups.push(child)

    await waitFor('the npx server to answer its health check', async () => (await checkHealth(`http://127.0.0.1:${port}/api/health`, 2000)).healthy, 180_000, 200)
    const pid = Number(readFileSync(join(home, '.amplifier', 'server', 'server.pid'), 'utf8').trim())
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    const escaped = cache.replaceAll(/[.*+?^${}()|[\]\\]/g, '\\$&')
    expect(argv[1]).to.match(new RegExp(`^${escaped}/_npx/[0-9a-f]{16}/node_modules/`))
    expect(argv.slice(2, 5)).to.deep.equal(['serve', '--port', String(port)])

    killGroup(child, 'SIGTERM')
    const finished = await done
    expect(finished.stdout).to.include(`listening on http://127.0.0.1:${port}`)
    expect(existsSync(join(home, '.amplifier', 'server', 'server.pid'))).to.equal(false)
  })

  it('service status gives what the checkout gives, output and exit code', async () => {
    const home = tempHome()
    const env = envFor(home, {PATH: pathWithoutAmpDistro()})
    const viaNpx = await run(['service', 'status'], env)
    const direct = await runCli(['service', 'status'], {env})
    expect(viaNpx.stderr).to.equal(direct.stderr)
    expect(viaNpx.stdout).to.equal(direct.stdout)
    expect(viaNpx.code).to.equal(direct.code)
    expect(viaNpx.stdout + viaNpx.stderr).to.match(/amplifier-distro/)
  })

  it('service install --dry-run writes units for the durable amp-distro on PATH, not the npx copy', async () => {
    const prefix = globalInstall()
    const home = tempHome()
    const done = await run(['service', 'install', '--dry-run'], envFor(home, {PATH: [join(prefix, 'bin'), pathWithoutAmpDistro()].join(delimiter)}))
    expect(done.code, done.stderr).to.equal(0)
    const execStarts = done.stdout.split('\n').filter((line) => line.trim().startsWith('ExecStart='))
    expect(execStarts).to.have.length.greaterThan(0)
    for (const line of execStarts) expect(line.trim()).to.match(new RegExp(`^ExecStart="${join(prefix, 'bin', 'amp-distro').replaceAll('.', '\\.')}" "(serve|watchdog)" `))
    expect(listFiles(home)).to.deep.equal([])
  })

  it('service install without a durable amp-distro refuses, says how to install, and writes nothing', async () => {
    const home = tempHome()
    const done = await run(['service', 'install'], envFor(home, {PATH: pathWithoutAmpDistro()}))
    expect(done.code).to.not.equal(0)
    expect(done.stderr).to.include("amp-distro is running from npx's cache")
    expect(done.stderr).to.include('npm install -g amp-distro')
    expect(done.stderr).not.to.match(/^\s+at /m)
    expect(listFiles(home)).to.deep.equal([])
  })
})
