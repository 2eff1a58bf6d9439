import {expect} from 'chai'
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {mkdtempSync, readdirSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const LOCK_MODULE = fileURLToPath(new URL('../../src/lib/process/lock.ts', import.meta.url))

/** Runs an ES module snippet in a separate Node process, with TypeScript sources importable. */
function node(code: string): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {stdio: ['ignore', 'pipe', 'pipe']})
}

function finished(child: ChildProcess): Promise<{code: number | null; stdout: string; stderr: string}> {
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
  })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  return new Promise((resolve) => {
    child.on('close', (code) => resolve({code, stdout, stderr}))
  })
}

/** The `in`/`out` log lines of critical sections, checked to nest in no way: each `in` is followed by its own `out`. */
function overlaps(log: string): string[] {
  const lines = log.trim().split('\n')
  const problems: string[] = []
  for (let i = 0; i < lines.length; i += 2) {
    const [enter, leave] = [lines[i], lines[i + 1]]
    if (!enter.startsWith('in ') || leave !== `out ${enter.slice(3)}`) problems.push(`${enter} / ${leave}`)
  }

  return problems
}

describe('withLock across processes', function () {
  this.timeout(60_000)
  let dir: string
  const children: ChildProcess[] = []

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'amp-lock-procs-'))
  })

  afterEach(() => {
    for (const child of children.splice(0)) child.kill('SIGKILL')
    rmSync(dir, {recursive: true, force: true})
  })

  it('never shows the lock file without its holder’s PID, so waiters cannot take a lock being created for abandoned', async () => {
    const file = join(dir, 'service.lock')
    const child = node(`
      import {withLock} from ${JSON.stringify(LOCK_MODULE)}
      const end = Date.now() + 2000
      let taken = 0
      while (Date.now() < end) { await withLock(${JSON.stringify(file)}, async () => undefined); taken++ }
      console.log(taken)`)
    children.push(child)
    const done = finished(child)
    let running = true
    void done.then(() => {
      running = false
    })
    const seen = {withPid: 0, empty: 0}
    // Reads as fast as possible while the other process takes and releases the lock, yielding now and then so `done` can fire.
    while (running) {
      const until = Date.now() + 50
      while (Date.now() < until) {
        try {
          if (/^\d+\n$/.test(readFileSync(file, 'utf8'))) seen.withPid++
          else seen.empty++
        } catch {
          // Not held at this instant.
        }
      }

      await new Promise((resolve) => setImmediate(resolve))
    }

    const result = await done
    expect(result.code, result.stderr).to.equal(0)
    expect(Number(result.stdout), 'locks taken').to.be.above(100)
    expect(seen.withPid, 'reads that found the lock held').to.be.above(100)
    expect(seen.empty, 'reads that found the lock without a PID').to.equal(0)
  })

  it('processes finding an abandoned lock at the same moment take it one at a time', async () => {
    const file = join(dir, 'service.lock')
    const log = join(dir, 'sections.log')
    const processes = 5
    const rounds = 10
    const roundMs = 500
    const dead = spawnSync('true').pid
    // Start-up of the children is slow and uneven, so every round begins at an agreed time instead.
    const first = Date.now() + 4000
    for (let index = 0; index < processes; index++) {
      const child = node(`
        import {appendFileSync, writeFileSync} from 'node:fs'
        import {withLock} from ${JSON.stringify(LOCK_MODULE)}
        const file = ${JSON.stringify(file)}
        for (let round = 0; round < ${rounds}; round++) {
          const start = ${first} + round * ${roundMs}
          if (${index} === 0) {
            while (Date.now() < start - 150) await new Promise((resolve) => setTimeout(resolve, 5))
            // A lock left by a dead process; skipped if a section of the last round still runs.
            try { writeFileSync(file, '${dead}\\n', {flag: 'wx'}) } catch {}
          }
          while (Date.now() < start) {}
          await withLock(file, async () => {
            appendFileSync(${JSON.stringify(log)}, 'in ' + process.pid + '\\n')
            await new Promise((resolve) => setTimeout(resolve, 20))
            appendFileSync(${JSON.stringify(log)}, 'out ' + process.pid + '\\n')
          }, {timeoutMs: 20000})
        }`)
      children.push(child)
    }

    const results = await Promise.all(children.map((child) => finished(child)))
    for (const result of results) expect(result.code, result.stderr).to.equal(0)
    const text = readFileSync(log, 'utf8')
    expect(overlaps(text), 'sections that overlapped').to.deep.equal([])
    expect(text.trim().split('\n')).to.have.length(processes * rounds * 2)
    expect(readdirSync(dir).sort(), 'files left beside the log').to.deep.equal(['sections.log'])
  })
})
