import {expect} from 'chai'
import {chmodSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {EXIT_CONFIG} from '../../src/lib/errors.js'
import {pathsFor} from '../../src/lib/paths.js'
import {RESTART_SEC, SERVER_UNIT} from '../../src/lib/service/systemd/unit.js'
import {freePort, RUN_JS} from '../helpers/cli.js'
import {cliOk, expectOk} from './service-fixtures.js'
import {describeSystemd, type UserManager, waitFor} from './systemd-harness.js'

/**
 * The generated server unit with its command replaced by a program that
 * exits with `status` at once, as `serve` does for a configuration that can
 * never work (EXIT_CONFIG) or for a failure that may pass (1). Everything
 * else is the unit install wrote. Returns the unit file's path.
 */
async function serverExitingWith(um: UserManager, status: number): Promise<string> {
  const file = pathsFor(um.home, um.env).systemdServerUnit
  const program = join(um.home, `exit-${status}`)
  writeFileSync(program, `#!/bin/sh\necho "refusing to start (status ${status})" >&2\nexit ${status}\n`)
  chmodSync(program, 0o755)
  const text = readFileSync(file, 'utf8').replace(/^ExecStart=.*$/m, `ExecStart="${program}" "serve" "--port" "99999"`)
  writeFileSync(file, text)
  expectOk(await um.systemctl('daemon-reload'))
  expectOk(await um.systemctl('reset-failed', SERVER_UNIT))
  await um.systemctl('restart', SERVER_UNIT)
  return file
}

describeSystemd('a server unit whose configuration can never work (real systemd user manager)', (ctx) => {
  // The suite's manager (and with it the units) is stopped after the suite.
  before(async () => {
    await cliOk(ctx(), ['service', 'install', '--port', String(await freePort()), '--no-watchdog'])
  })

  it(`exit status ${EXIT_CONFIG} leaves the unit failed at once, NRestarts=0, and status names the line to fix`, async function () {
    this.timeout(60_000)
    const um = ctx()
    const file = await serverExitingWith(um, EXIT_CONFIG)
    const failed = await waitFor(
      async () => {
        const shown = await um.show(SERVER_UNIT, ['ActiveState', 'Result', 'ExecMainStatus', 'NRestarts'])
        return shown.ActiveState === 'failed' ? shown : undefined
      },
      {timeoutMs: 10_000, intervalMs: 100, what: 'the server unit to fail'},
    )
    expect(failed).to.deep.equal({ActiveState: 'failed', Result: 'exit-code', ExecMainStatus: String(EXIT_CONFIG), NRestarts: '0'})
    // Not restarted later either: past a restart delay it is still the same failure.
    await new Promise((resolve) => setTimeout(resolve, (RESTART_SEC + 1) * 1000))
    expect(await um.show(SERVER_UNIT, ['ActiveState', 'NRestarts'])).to.deep.equal({ActiveState: 'failed', NRestarts: '0'})

    const lines = readFileSync(file, 'utf8').split('\n')
    const at = lines.findIndex((line) => line.startsWith('ExecStart='))
    const status = expectOk(await um.run(process.execPath, [RUN_JS, 'service', 'status']))
    expect(status.stderr).to.include(`Warning: ${SERVER_UNIT} exited with status ${EXIT_CONFIG}: its command line or configuration can never work`)
    expect(status.stderr).to.include(`  The line to fix: ${file}, line ${at + 1}: ${lines[at]}\n`)

    // A restart cannot help: it ends at once with the unit's failed state, long before --wait.
    const restart = await um.run(process.execPath, [RUN_JS, 'service', 'restart', '--wait', '60', '--json'])
    expect(restart.code).to.equal(1)
    const result = JSON.parse(restart.stdout)
    expect(result.details[0]).to.equal(`Supervisor: the server is failed (exit-code) (${SERVER_UNIT}).`)
    expect(result.serving).to.include({healthy: false, waitSeconds: 60})
    expect(result.serving.elapsedMs).to.be.below(30_000)
  })

  it('another exit status is still restarted (the check above can fail)', async function () {
    this.timeout(60_000)
    const um = ctx()
    await serverExitingWith(um, 1)
    const restarted = await waitFor(
      async () => {
        const {NRestarts} = await um.show(SERVER_UNIT, ['NRestarts'])
        return Number(NRestarts) > 0 ? NRestarts : undefined
      },
      {timeoutMs: (RESTART_SEC + 10) * 1000, intervalMs: 200, what: 'systemd to restart the failing server'},
    )
    expect(Number(restarted)).to.be.above(0)
  })
})
