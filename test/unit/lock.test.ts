import {expect} from 'chai'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {UserError} from '../../src/lib/errors.js'
import {withLock} from '../../src/lib/process/lock.js'

/** A PID no process can have: above Linux's largest (2^22) and macOS's (99999). */
const NO_SUCH_PID = 4_194_305

/** The clock a wait runs on: a sleep moves it on and yields to other callers, so a 60 s wait takes no time. */
function fakeClock(): {now: () => number; sleep: (ms: number) => Promise<void>; slept: number[]} {
  let t = 0
  const slept: number[] = []
  return {
    now: () => t,
    slept,
    sleep: async (ms) => {
      slept.push(ms)
      t += ms
      await new Promise((resolve) => setImmediate(resolve))
    },
  }
}

describe('withLock', () => {
  let dir: string
  let file: string

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'amp-lock-'))
    file = join(dir, 'server', 'service.lock')
  })

  afterEach(() => rmSync(dir, {recursive: true, force: true}))

  it('runs overlapping callers one after the other', async () => {
    const clock = fakeClock()
    const events: string[] = []
    let waited!: () => void
    // The first caller holds the lock until the second has found it held and waited once.
    const secondWaited = new Promise<void>((resolve) => (waited = resolve))
    const first = withLock(file, async () => {
      events.push('a start')
      await secondWaited
      events.push('a end')
    })
    const second = withLock(
      file,
      async () => {
        events.push('b start')
        events.push('b end')
      },
      {
        ...clock,
        sleep: async (ms) => {
          waited()
          await clock.sleep(ms)
        },
      },
    )

    await Promise.all([first, second])
    expect(events).to.deep.equal(['a start', 'a end', 'b start', 'b end'])
    expect(clock.slept[0]).to.equal(100)
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
    await withLock(join(dir, 'x.lock'), async () => undefined)
    for (const content of [`${NO_SUCH_PID}\n`, 'garbage\n']) {
      writeFileSync(join(dir, 'stale.lock'), content)
      const result = await withLock(join(dir, 'stale.lock'), async () => 'ran', {timeoutMs: 2000, ...fakeClock()})
      expect(result).to.equal('ran')
      expect(existsSync(join(dir, 'stale.lock'))).to.equal(false)
    }
  })

  it('refuses with a clear message while a live process holds it past the timeout', async () => {
    // The holder is this test's own process, alive throughout; the caller takes the lock as another PID.
    const clock = fakeClock()
    writeFileSync(join(dir, 'held.lock'), `${process.pid}\n`)
    let caught: unknown
    try {
      await withLock(join(dir, 'held.lock'), async () => 'ran', {timeoutMs: 300, pid: NO_SUCH_PID, ...clock})
    } catch (error) {
      caught = error
    }

    expect(caught).to.be.instanceOf(UserError)
    expect((caught as UserError).message).to.equal(`Another amp-distro service command is running (PID ${process.pid}).`)
    expect(clock.now()).to.equal(300)
    expect(existsSync(join(dir, 'held.lock'))).to.equal(true)
  })

  it('takes an abandoned lock even when a waiter was killed while removing it', async () => {
    const lock = join(dir, 'stale.lock')
    writeFileSync(lock, `${NO_SUCH_PID}\n`)
    writeFileSync(`${lock}.break`, `${NO_SUCH_PID}\n`)
    expect(await withLock(lock, async () => 'ran', {timeoutMs: 2000, ...fakeClock()})).to.equal('ran')
    expect(readdirSync(dir)).to.deep.equal([])
  })

  it('fails with a clear message when the lock cannot be created or read', async () => {
    const failure = async (lock: string) => {
      try {
        await withLock(lock, async () => 'ran', {timeoutMs: 300, ...fakeClock()})
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
