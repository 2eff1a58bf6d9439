import {expect} from 'chai'
import {spawn, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {UserError} from '../../src/lib/errors.js'
import {withLock} from '../../src/lib/process/lock.js'

describe('withLock', () => {
  let dir: string
  let file: string

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'amp-lock-'))
    file = join(dir, 'server', 'service.lock')
  })

  afterEach(() => rmSync(dir, {recursive: true, force: true}))

  it('runs overlapping callers one after the other', async () => {
    const events: string[] = []
    const step = (name: string) => async () => {
      events.push(`${name} start`)
      await new Promise((resolve) => setTimeout(resolve, 150))
      events.push(`${name} end`)
    }

    await Promise.all([withLock(file, step('a')), withLock(file, step('b'))])
    expect(events).to.deep.equal(['a start', 'a end', 'b start', 'b end'])
    expect(existsSync(file)).to.equal(false)
  })

  it('releases the lock when the work fails', async () => {
    let caught: unknown
    try {
      await withLock(file, async () => {
        throw new Error('boom')
      })
    } catch (error) {
      caught = error
    }

    expect((caught as Error).message).to.equal('boom')
    expect(existsSync(file)).to.equal(false)
  })

  it('takes over a lock left by a dead process or holding garbage', async () => {
    const dead = spawnSync('true').pid
    await withLock(join(dir, 'x.lock'), async () => undefined)
    for (const content of [`${dead}\n`, 'garbage\n']) {
      writeFileSync(join(dir, 'stale.lock'), content)
      const result = await withLock(join(dir, 'stale.lock'), async () => 'ran', {timeoutMs: 2000})
      expect(result).to.equal('ran')
      expect(existsSync(join(dir, 'stale.lock'))).to.equal(false)
    }
  })

  it('refuses with a clear message while a live process holds it past the timeout', async () => {
    const holder = spawn('sleep', ['30'], {stdio: 'ignore'})
    try {
      writeFileSync(join(dir, 'held.lock'), `${holder.pid}\n`)
      let caught: unknown
      try {
        await withLock(join(dir, 'held.lock'), async () => 'ran', {timeoutMs: 300})
      } catch (error) {
        caught = error
      }

      expect(caught).to.be.instanceOf(UserError)
      expect((caught as UserError).message).to.equal(`Another amp-distro service command is running (PID ${holder.pid}).`)
      expect(existsSync(join(dir, 'held.lock'))).to.equal(true)
    } finally {
      holder.kill('SIGKILL')
    }
  })

  it('takes an abandoned lock even when a waiter was killed while removing it', async () => {
    const dead = spawnSync('true').pid
    const lock = join(dir, 'stale.lock')
    writeFileSync(lock, `${dead}\n`)
    writeFileSync(`${lock}.break`, `${dead}\n`)
    expect(await withLock(lock, async () => 'ran', {timeoutMs: 2000})).to.equal('ran')
    expect(readdirSync(dir)).to.deep.equal([])
  })

  it('fails with a clear message when the lock cannot be created or read', async () => {
    const failure = async (lock: string) => {
      try {
        await withLock(lock, async () => 'ran', {timeoutMs: 300})
      } catch (error) {
        return error
      }

      throw new Error('withLock ran the work')
    }

    writeFileSync(join(dir, 'server'), 'a file where the folder should be\n')
    const blocked = await failure(file)
    expect(blocked).to.be.instanceOf(UserError)
    expect((blocked as UserError).message).to.match(/^Cannot create the service lock .*\/server\/service\.lock \((ENOTDIR|EEXIST)\)\.$/)

    const folder = join(dir, 'folder.lock')
    mkdirSync(folder)
    const unreadable = await failure(folder)
    expect(unreadable).to.be.instanceOf(UserError)
    expect((unreadable as UserError).message).to.equal(`Cannot take the service lock ${folder}.`)
  })
})
