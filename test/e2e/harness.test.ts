import {expect} from 'chai'
import {execFile, spawn} from 'node:child_process'
import {existsSync, readFileSync, readlinkSync} from 'node:fs'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {
  type UserManager,
  describeSystemd,
  harnessUnavailable,
  isRunning,
  pidsInMountNamespace,
  reapOrphanedManagers,
  startUserManager,
  systemdHarnessUnavailable,
  waitFor,
} from './systemd-harness.js'

const SYSTEMD_DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
const UNIT = 'harness-smoke.service'
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const FIXTURE = 'test/e2e/fixtures/systemd-suite.fixture.ts'

/** Exits on its own only when killed; prints its environment so the journal capture can be checked. */
const SMOKE_UNIT = `[Unit]
Description=harness smoke unit

[Service]
ExecStart=/bin/sh -c 'echo "smoke-unit INVOCATION_ID=$$INVOCATION_ID PATH=$$PATH"; exec sleep 600'
Restart=on-failure
RestartSec=1
`

async function writeUnit(home: string, name: string, text: string): Promise<void> {
  const dir = path.join(home, '.config', 'systemd', 'user')
  await mkdir(dir, {recursive: true})
  await writeFile(path.join(dir, name), text, {mode: 0o644})
}

/** Installs and starts the smoke unit unless it already runs; returns its MainPID. */
async function startSmokeUnit(um: UserManager): Promise<number> {
  await writeUnit(um.home, UNIT, SMOKE_UNIT)
  expect((await um.systemctl('daemon-reload')).code).to.equal(0)
  const started = await um.systemctl('start', UNIT)
  expect(started.code, started.stderr).to.equal(0)
  return waitFor(async () => (await um.mainPid(UNIT)) || undefined, {timeoutMs: 10_000, what: `a MainPID for ${UNIT}`})
}

function environOf(pid: number): Record<string, string> {
  const values: Record<string, string> = {}
  for (const pair of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const equals = pair.indexOf('=')
    if (equals > 0) values[pair.slice(0, equals)] = pair.slice(equals + 1)
  }

  return values
}

describe('waitFor', () => {
  it('resolves with the first value that is not undefined or false', async () => {
    let calls = 0
    const value = await waitFor(async () => (++calls >= 3 ? 0 : undefined), {timeoutMs: 5000, intervalMs: 5, what: 'a third call'})
    expect(value).to.equal(0)
    expect(calls).to.equal(3)
  })

  it('rejects naming what it waited for, with the last error', async () => {
    const error = await waitFor(
      async () => {
        throw new Error('probe broke')
      },
      {timeoutMs: 50, intervalMs: 10, what: 'the impossible'},
    ).then(
      () => undefined,
      (error_: Error) => error_,
    )
    expect(error?.message).to.match(/timed out after 50 ms waiting for the impossible/)
    expect(error?.message).to.contain('probe broke')
  })
})

describeSystemd('systemd user manager harness', function (manager) {
  it('runs systemd --user in a mount namespace of its own', async () => {
    const um = manager()
    expect(readFileSync(`/proc/${um.managerPid}/comm`, 'utf8').trim()).to.equal('systemd')
    expect(um.namespace).to.match(/^mnt:\[\d+\]$/)
    expect(um.namespace).not.to.equal(readlinkSync('/proc/self/ns/mnt'))
    expect(readlinkSync(`/proc/${um.managerPid}/ns/mnt`)).to.equal(um.namespace)
    const inside = await um.run('sh', ['-c', 'test -d /run/systemd/system && echo "$HOME|$XDG_RUNTIME_DIR|$FOO"'], {env: {FOO: 'bar'}})
    expect(inside).to.deep.equal({code: 0, stdout: `${um.home}|/run/user/0|bar\n`, stderr: ''})
    expect((await um.systemctl('is-system-running')).stdout.trim()).to.be.oneOf(['running', 'degraded'])
  })

  it('reports a missing unit as not-found with MainPID 0', async () => {
    const um = manager()
    expect(await um.show('no-such-unit.service', ['LoadState', 'ActiveState'])).to.deep.equal({
      LoadState: 'not-found',
      ActiveState: 'inactive',
    })
    expect(await um.mainPid('no-such-unit.service')).to.equal(0)
    const valueOnly = await um.systemctl('show', '-p', 'LoadState', '--value', 'no-such-unit.service')
    expect(valueOnly).to.include({code: 0, stdout: 'not-found\n'})
  })

  it('starts a unit from HOME with INVOCATION_ID and PATH reset to systemd’s default, its output in the journal', async () => {
    const um = manager()
    const pid = await startSmokeUnit(um)
    expect(await um.systemctl('is-active', UNIT)).to.include({code: 0, stdout: 'active\n'})
    const environ = environOf(pid)
    expect(environ.INVOCATION_ID).to.match(/^[0-9a-f]{32}$/)
    expect(environ.PATH).to.equal(SYSTEMD_DEFAULT_PATH)
    expect(environ.HOME).to.equal(um.home)
    const line = await waitFor(async () => (await um.journal(UNIT)).match(/^smoke-unit .*$/m)?.[0], {timeoutMs: 10_000, what: 'the unit’s output in the journal'})
    expect(line).to.equal(`smoke-unit INVOCATION_ID=${environ.INVOCATION_ID} PATH=${SYSTEMD_DEFAULT_PATH}`)
    const log = um.log()
    expect(log).to.match(/Startup finished/)
    expect(log).to.contain(line)
  })

  it('runs a journald of its own, which files a user unit’s lines under _SYSTEMD_USER_UNIT for journalctl --user-unit', async () => {
    const um = manager()
    expect(readFileSync(`/proc/${um.journaldPid}/comm`, 'utf8').trim()).to.equal('systemd-journal')
    expect(readlinkSync(`/proc/${um.journaldPid}/ns/mnt`)).to.equal(um.namespace)
    const pid = await startSmokeUnit(um)
    // The shape journald reads a user unit from: slices, user@<uid>.service, the manager's own cgroups.
    for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
      if (/^\d+:(name=systemd)?:/.test(line)) {
        expect(line).to.match(new RegExp(`:/amp-distro-e2e-${process.pid}-[0-9a-f]+\\.slice/user@0\\.service/app\\.slice/${UNIT.replace('.', '\\.')}$`))
      }
    }

    const entry = await waitFor(
      async () =>
        (await um.journal(UNIT, {output: 'json'}))
          .split('\n')
          .filter(Boolean)
          .map((text) => JSON.parse(text) as Record<string, string>)
          .find((fields) => fields.MESSAGE?.startsWith('smoke-unit ') && fields._PID === String(pid)),
      {timeoutMs: 10_000, what: 'the unit’s line in the journal'},
    )
    expect(entry).to.include({_SYSTEMD_USER_UNIT: UNIT, _SYSTEMD_UNIT: 'user@0.service'})
    // What the CLI's own reading of the journal relies on: the unit's lines found by name, and only those.
    const byName = await um.run('journalctl', ['--user-unit', UNIT, '-o', 'cat', '--no-pager'])
    expect(byName.code, byName.stderr).to.equal(0)
    expect(byName.stdout).to.contain(entry.MESSAGE)
    expect((await um.run('journalctl', ['--user-unit', 'no-such-unit.service', '-o', 'cat', '-q', '--no-pager'])).stdout).to.equal('')
  })

  it('restarts a Restart=on-failure unit killed with SIGKILL, under a new MainPID', async () => {
    const um = manager()
    const before = await startSmokeUnit(um)
    const restarts = Number((await um.show(UNIT, ['NRestarts'])).NRestarts)
    process.kill(before, 'SIGKILL')
    const after = await waitFor(
      async () => {
        const pid = await um.mainPid(UNIT)
        return pid !== 0 && pid !== before ? pid : undefined
      },
      {timeoutMs: 20_000, what: `${UNIT} to come back after kill -9`},
    )
    expect(isRunning(after)).to.equal(true)
    expect(await um.show(UNIT, ['ActiveState', 'NRestarts'])).to.deep.equal({ActiveState: 'active', NRestarts: String(restarts + 1)})
  })

  it('kills a command that outlives timeoutMs', async () => {
    const result = await manager().run('sleep', ['30'], {timeoutMs: 300})
    expect(result.code).to.equal(124)
    expect(result.stderr).to.contain('killed after 300 ms')
  })
})

describe('systemd user manager lifecycle', function () {
  this.timeout(120_000)
  const started: UserManager[] = []

  before(function () {
    const reason = systemdHarnessUnavailable()
    if (reason !== undefined) harnessUnavailable(this, 'systemd user manager lifecycle', reason)
  })

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') for (const um of started) console.log(`----- manager ${um.managerPid} log -----\n${um.log()}`)
    await Promise.all(started.splice(0).map((um) => um.stop()))
  })

  it('runs two managers at once in distinct namespaces and cgroups, and stop() leaves nothing behind', async () => {
    const [a, b] = await Promise.all([startUserManager(), startUserManager()])
    started.push(a, b)
    console.log(`      manager start: ${a.startMs} ms and ${b.startMs} ms (concurrently)`)
    expect(a.namespace).not.to.equal(b.namespace)
    expect(a.home).not.to.equal(b.home)
    expect(a.managerPid).not.to.equal(b.managerPid)
    expect(a.cgroups).to.have.length.greaterThan(0)
    expect(a.cgroups).not.to.have.members(b.cgroups)

    const unitInA = await startSmokeUnit(a)
    expect((await b.show(UNIT, ['LoadState'])).LoadState).to.equal('not-found')
    expect(await b.mainPid(UNIT)).to.equal(0)

    // Same unit name in both: stopping it in one manager must not touch the other's process.
    const unitInB = await startSmokeUnit(b)
    const lineInA = await waitFor(async () => (await a.journal(UNIT)).match(/^smoke-unit .*$/m)?.[0], {timeoutMs: 10_000, what: 'the unit’s line in a’s journal'})
    await waitFor(async () => (await b.journal(UNIT)).includes('smoke-unit '), {timeoutMs: 10_000, what: 'the unit’s line in b’s journal'})
    expect(await b.journal(UNIT)).not.to.contain(lineInA)
    expect((await a.systemctl('stop', UNIT)).code).to.equal(0)
    expect(isRunning(unitInA)).to.equal(false)
    expect(isRunning(unitInB)).to.equal(true)
    expect(await b.mainPid(UNIT)).to.equal(unitInB)
    expect(b.log()).not.to.contain('left-over process')
    const restartedInA = await startSmokeUnit(a)

    await a.stop()
    expect(isRunning(a.managerPid)).to.equal(false)
    expect(isRunning(restartedInA)).to.equal(false)
    expect(isRunning(a.anchorPid)).to.equal(false)
    expect(pidsInMountNamespace(a.namespace)).to.deep.equal([])
    expect(a.cgroups.filter((dir) => existsSync(dir))).to.deep.equal([])
    expect(existsSync(a.home)).to.equal(false)

    expect((await b.systemctl('is-system-running')).stdout.trim()).to.be.oneOf(['running', 'degraded'])
    expect(isRunning(unitInB)).to.equal(true)
    await b.stop()
    expect(isRunning(b.managerPid)).to.equal(false)
    expect(isRunning(unitInB)).to.equal(false)
    expect(pidsInMountNamespace(b.namespace)).to.deep.equal([])
    expect(b.cgroups.filter((dir) => existsSync(dir))).to.deep.equal([])
    expect(existsSync(b.home)).to.equal(false)
    expect((await b.systemctl('is-system-running')).code).not.to.equal(0)
  })

  it('stop() kills a unit that ignores SIGTERM instead of waiting out its stop timeout', async () => {
    const um = await startUserManager()
    started.push(um)
    await writeUnit(um.home, 'stubborn.service', "[Service]\nExecStart=/bin/sh -c 'trap \"\" TERM; while :; do sleep 1; done'\n")
    expect((await um.systemctl('daemon-reload')).code).to.equal(0)
    expect((await um.systemctl('start', 'stubborn.service')).code).to.equal(0)
    const pid = await waitFor(async () => (await um.mainPid('stubborn.service')) || undefined, {timeoutMs: 10_000, what: 'a MainPID'})
    const began = Date.now()
    await um.stop({exitTimeoutMs: 1000})
    console.log(`      stop() with a stubborn unit: ${Date.now() - began} ms`)
    expect(isRunning(pid)).to.equal(false)
    expect(isRunning(um.managerPid)).to.equal(false)
    expect(pidsInMountNamespace(um.namespace)).to.deep.equal([])
    expect(um.cgroups.filter((dir) => existsSync(dir))).to.deep.equal([])
  })

  it('reaps a manager whose test process was killed before it could stop it', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/e2e/fixtures/orphan-manager.fixture.ts'], {cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit']})
    let output = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk
    })
    const orphan = await waitFor(
      async () => (output.includes('\n') ? (JSON.parse(output.split('\n')[0]) as {managerPid: number; journaldPid: number; cgroups: string[]; home: string}) : undefined),
      {timeoutMs: 60_000, what: 'the fixture to start its manager'},
    )
    try {
      child.kill('SIGKILL')
      await new Promise((resolve) => child.on('close', resolve))
      expect(isRunning(orphan.managerPid)).to.equal(true)
      expect(isRunning(orphan.journaldPid)).to.equal(true)
      await reapOrphanedManagers()
      expect(isRunning(orphan.managerPid)).to.equal(false)
      expect(isRunning(orphan.journaldPid)).to.equal(false)
      expect(orphan.cgroups.filter((dir) => existsSync(dir))).to.deep.equal([])
    } finally {
      child.kill('SIGKILL')
      await rm(orphan.home, {recursive: true, force: true})
    }
  })

  it('sends the units’ output to log() instead of the journal when asked to (the debug switch)', async () => {
    const um = await startUserManager({tty: true})
    started.push(um)
    await startSmokeUnit(um)
    await waitFor(async () => /^smoke-unit /m.test(um.log()), {timeoutMs: 10_000, what: 'the unit’s output on the manager’s pty'})
    expect(await um.journal(UNIT)).to.equal('')
  })

  it('leaves a caller-provided HOME in place', async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), 'amp-distro-e2e-own-'))
    try {
      const um = await startUserManager({home})
      started.push(um)
      expect(um.home).to.equal(home)
      expect(um.env.HOME).to.equal(home)
      await um.stop()
      expect(existsSync(home)).to.equal(true)
    } finally {
      await rm(home, {recursive: true, force: true})
    }
  })
})

/** Runs the fixture suite in its own mocha process (CI unset unless given), optionally unprivileged. */
function runFixture(extra: NodeJS.ProcessEnv, asNobody: boolean): Promise<{code: number; output: string}> {
  const mocha = [process.execPath, path.join(ROOT, 'node_modules', 'mocha', 'bin', 'mocha.js'), FIXTURE]
  const [file, ...args] = asNobody ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--', ...mocha] : mocha
  const env = {...process.env}
  delete env.CI
  return new Promise((resolve) => {
    execFile(file, args, {cwd: ROOT, env: {...env, ...extra}, encoding: 'utf8', timeout: 90_000}, (error, stdout, stderr) => {
      resolve({code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, output: stdout + stderr})
    })
  })
}

describe('describeSystemd policy', function () {
  this.timeout(120_000)
  type Outcome = {code: number; output: string}
  let failing: Outcome, passing: Outcome, skipped: Outcome, underCi: Outcome

  // The four runs are independent mocha processes; running them together keeps the suite short.
  before(async function () {
    const reason = systemdHarnessUnavailable()
    if (reason !== undefined) harnessUnavailable(this, 'describeSystemd policy', reason)
    ;[failing, passing, skipped, underCi] = await Promise.all([
      runFixture({E2E_FIXTURE_FAIL: '1'}, false),
      runFixture({}, false),
      runFixture({}, true),
      runFixture({CI: 'true'}, true),
    ])
  })

  it('prints the manager log when a test in the suite fails', () => {
    expect(failing.code, failing.output).to.equal(1)
    expect(failing.output).to.contain('----- systemd user manager log (fixture suite) -----')
    expect(failing.output).to.match(/Startup finished in/)
  })

  it('passes against a running manager, without dumping its log', () => {
    expect(passing.code, passing.output).to.equal(0)
    expect(passing.output).to.contain('1 passing')
    expect(passing.output).not.to.contain('systemd user manager log')
  })

  it('skips the suite, saying why, when the harness cannot run outside CI', () => {
    expect(skipped.code, skipped.output).to.equal(0)
    expect(skipped.output).to.match(/skipping "fixture suite": systemd harness unavailable: needs root/)
    expect(skipped.output).to.contain('1 pending')
  })

  it('fails the suite with the reason under CI=true', () => {
    expect(underCi.code, underCi.output).not.to.equal(0)
    expect(underCi.output).to.contain('systemd harness unavailable under CI: needs root')
  })
})
