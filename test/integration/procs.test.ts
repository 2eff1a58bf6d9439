import {expect} from 'chai'
import {spawn} from 'node:child_process'
import {mkdirSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {commandLine, isAlive, isToolProcess, runsSubcommand} from '../../src/lib/process/procs.js'
import {cleanup, envFor, exitOf, freePort, REPO, RUN_JS, start, tempHome, track, waitFor} from '../helpers/cli.js'
import {startServe} from '../helpers/processes.js'

const IDLE = 'setInterval(() => {}, 1000)\n'

/** A folder with a package.json named `name` and an idle script at `script` (relative to the folder). */
function fakePackage(root: string, name: string | undefined, script: string): string {
  const dir = join(root, 'pkg')
  mkdirSync(join(dir, 'bin'), {recursive: true})
  if (name !== undefined) writeFileSync(join(dir, 'package.json'), JSON.stringify({name, version: '1.0.0'}))
  mkdirSync(join(dir, script, '..'), {recursive: true})
  writeFileSync(join(dir, script), IDLE)
  return dir
}

async function deadPid(): Promise<number> {
  const child = track(spawn('true'))
  await exitOf(child)
  return child.pid!
}

/** Starts an idle `node <script> serve` and waits until its command line is visible. */
async function idleServe(script: string, cwd: string): Promise<number> {
  const run = start(script, ['serve', '--port', '1'], {cwd})
  const pid = run.child.pid!
  await waitFor('the command line', () => commandLine(pid)?.includes('serve'))
  return pid
}

describe('procs (real processes)', function () {
  this.timeout(60_000)

  afterEach(cleanup)

  describe('isAlive', () => {
    it('is true for this process and false for an exited one', async () => {
      expect(isAlive(process.pid)).to.equal(true)
      expect(isAlive(await deadPid())).to.equal(false)
    })
  })

  describe('commandLine', () => {
    it("reads a live process's argument vector, keeping arguments with spaces whole on Linux", async () => {
      const child = track(spawn('sleep', ['60'], {stdio: 'ignore'}))
      await waitFor('sleep to start', () => commandLine(child.pid!)?.[0] === 'sleep')
      expect(commandLine(child.pid!)).to.deep.equal(['sleep', '60'])
    })

    it('uses ps on other platforms', async () => {
      const child = track(spawn('sleep', ['61'], {stdio: 'ignore'}))
      await waitFor('sleep to start', () => commandLine(child.pid!, 'darwin')?.[0] === 'sleep')
      expect(commandLine(child.pid!, 'darwin')).to.deep.equal(['sleep', '61'])
    })

    it('is undefined for a process that is gone, on either path', async () => {
      const pid = await deadPid()
      expect(commandLine(pid, 'linux')).to.equal(undefined)
      expect(commandLine(pid, 'darwin')).to.equal(undefined)
    })
  })

  describe('runsSubcommand and isToolProcess', () => {
    it('recognise a real `node <abs>/bin/run.js serve`', async () => {
      const run = await startServe({home: tempHome()})
      const pid = run.child.pid!
      expect(runsSubcommand(commandLine(pid)!, 'serve', pid)).to.equal(true)
      expect(isToolProcess(pid, 'serve')).to.equal(true)
      expect(isToolProcess(pid, 'watchdog')).to.equal(false)
    })

    it('recognise a real `node bin/run.js serve` started with a relative path from the checkout', async () => {
      const home = tempHome()
      const port = await freePort()
      const run = start('bin/run.js', ['serve', '--port', String(port)], {cwd: REPO, env: envFor(home)})
      await waitFor('serve to listen', () => run.stdout().includes('listening on'))
      expect(commandLine(run.child.pid!)).to.include('bin/run.js')
      expect(isToolProcess(run.child.pid!, 'serve')).to.equal(true)
    })

    it("recognise npm's `amp-distro` launcher, a symlink to bin/run.js", async () => {
      const prefix = tempHome('amp-distro-prefix-')
      mkdirSync(join(prefix, 'bin'))
      symlinkSync(RUN_JS, join(prefix, 'bin', 'amp-distro'))
      const home = tempHome()
      const port = await freePort()
      const run = start(join(prefix, 'bin', 'amp-distro'), ['serve', '--port', String(port)], {env: envFor(home)})
      await waitFor('serve to listen', () => run.stdout().includes('listening on'))
      expect(isToolProcess(run.child.pid!, 'serve')).to.equal(true)
    })

    it('do not recognise sleep', async () => {
      const child = track(spawn('sleep', ['60'], {stdio: 'ignore'}))
      await waitFor('sleep to start', () => commandLine(child.pid!)?.[0] === 'sleep')
      expect(isToolProcess(child.pid!, 'serve')).to.equal(false)
    })

    it('do not recognise a node script in a folder named amp-distro', async () => {
      const root = join(tempHome('amp-distro-folder-'), 'amp-distro')
      mkdirSync(root)
      writeFileSync(join(root, 'index.js'), IDLE)
      expect(isToolProcess(await idleServe(join(root, 'index.js'), root), 'serve')).to.equal(false)
    })

    it('do not recognise bin/run.js of another package, even one inside a folder named amp-distro', async () => {
      const dir = fakePackage(join(tempHome(), 'amp-distro'), 'amp-distro-tools', 'bin/run.js')
      expect(isToolProcess(await idleServe('bin/run.js', dir), 'serve')).to.equal(false)
      expect(isToolProcess(await idleServe(join(dir, 'bin', 'run.js'), '/'), 'serve')).to.equal(false)
    })

    it('recognise bin/run.js of an install made before the package was renamed (amplifier-distro)', async () => {
      const dir = fakePackage(tempHome(), 'amplifier-distro', 'bin/run.js')
      expect(isToolProcess(await idleServe(join(dir, 'bin', 'run.js'), '/'), 'serve')).to.equal(true)
    })

    it('do not recognise an amp-distro launcher of another package, or one with no package at all', async () => {
      const other = fakePackage(tempHome(), 'some-other-tool', 'bin/amp-distro')
      expect(isToolProcess(await idleServe(join(other, 'bin', 'amp-distro'), '/'), 'serve')).to.equal(false)
      const loose = fakePackage(tempHome(), undefined, 'bin/amp-distro')
      expect(isToolProcess(await idleServe(join(loose, 'bin', 'amp-distro'), '/'), 'serve')).to.equal(false)
    })

    it('do not recognise a dead PID', async () => {
      expect(isToolProcess(await deadPid(), 'serve')).to.equal(false)
    })

    it('need the subcommand directly after the entry script', async () => {
      const pid = await deadPid()
      expect(runsSubcommand([process.execPath, RUN_JS, 'serve', '--port', '1'], 'serve', pid)).to.equal(true)
      expect(runsSubcommand([process.execPath, '--import', 'tsx', join(REPO, 'bin', 'dev.js'), 'serve'], 'serve', pid)).to.equal(true)
      expect(runsSubcommand([process.execPath, RUN_JS, 'watchdog'], 'serve', pid)).to.equal(false)
      expect(runsSubcommand([process.execPath, RUN_JS, '--port', '1', 'serve'], 'serve', pid)).to.equal(false)
      expect(runsSubcommand([process.execPath, RUN_JS], 'serve', pid)).to.equal(false)
    })

    it('cannot resolve a relative entry script without the process (its working directory is gone)', async () => {
      expect(runsSubcommand([process.execPath, 'bin/run.js', 'serve'], 'serve', await deadPid())).to.equal(false)
    })
  })
})
