#!/usr/bin/env -S node --import tsx
/**
 * Time to healthy for the commands that start the server under a real
 * systemd user manager (the e2e harness: a private `systemd --user` and
 * journald in their own mount namespace, temporary HOME, free port):
 * `service install`, `service start` and `service restart`, each from the
 * command's start until it returned (they return only once /api/health
 * answers from the unit's main PID, which is checked again after each one).
 * Next to them, two floors measured in the same run:
 * - serve: a bare `amp-distro serve` started directly, until health answers
 *   from its PID (what Node and the server alone cost);
 * - systemctl: `systemctl --user start` of a plain unit running that same
 *   `serve`, until health answers from its MainPID (what systemd adds).
 * The table gives each command's median as a ratio to both floors.
 */
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {SERVER_UNIT} from '../src/lib/service/drivers/systemd/unit.js'
import {cli, systemctlOk, unitDir} from '../test/e2e/service-fixtures.js'
import {startUserManager, type UserManager, waitFor} from '../test/e2e/systemd-harness.js'
import {freePort, RUN_JS} from '../test/helpers/cli.js'
import {requireBuild} from '../test/helpers/pack.js'
import {builtCommandExists, healthPid} from '../test/helpers/processes.js'
import {benchArgs, loadLine, machineLine, median, table, wholeArg} from './report.js'

const USAGE = `Usage: node --import tsx bench/operate.ts [--rounds N]

Starts a private systemd user manager (the e2e harness: needs Linux, root,
systemd, util-linux and bsdutils) and, --rounds times each (default 5):
  serve      a bare \`amp-distro serve\`, started directly, until health answers
  systemctl  \`systemctl --user start\` of a plain unit running \`serve\`, until health answers
  install    \`amp-distro service install\` (after an uninstall), until it returns
  start      \`amp-distro service start\` (after a stop), until it returns
  restart    \`amp-distro service restart\`, until it returns
install, start and restart return once health answers from the new server.
Run \`npm run build\` first. Prints a table of milliseconds and ratios to the floors.`

const FLOOR_UNIT = 'amp-distro-bench-floor.service'
/** The floors poll this often; the commands poll on their own. */
const POLL_MS = 10

const ms = (value: number) => value.toFixed(0)

/** Waits until health on `port` answers from the PID `pid()` gives (which may change while starting). */
async function untilAnswering(port: number, pid: () => Promise<number>, what: string): Promise<void> {
  await waitFor(
    async () => {
      const [answered, expected] = await Promise.all([healthPid(port, 1000), pid()])
      return answered !== undefined && answered === expected
    },
    {timeoutMs: 60_000, intervalMs: POLL_MS, what},
  )
}

async function bareServe(um: UserManager, port: number): Promise<number> {
  const began = performance.now()
  const child = um.spawn(process.execPath, [RUN_JS, 'serve', '--host', '127.0.0.1', '--port', String(port)])
  try {
    await untilAnswering(port, async () => child.pid ?? -1, 'the bare serve to answer health')
    return performance.now() - began
  } finally {
    child.kill('SIGTERM')
    await new Promise((resolve) => {
      if (child.exitCode === null && child.signalCode === null) child.once('exit', resolve)
      else resolve(undefined)
    })
  }
}

async function plainUnit(um: UserManager, port: number): Promise<number> {
  const began = performance.now()
  await systemctlOk(um, 'start', FLOOR_UNIT)
  await untilAnswering(port, () => um.mainPid(FLOOR_UNIT), 'the plain unit to answer health')
  const elapsed = performance.now() - began
  await systemctlOk(um, 'stop', FLOOR_UNIT)
  return elapsed
}

/** Runs one command and returns its wall time; it must succeed and leave health answering from the unit's MainPID. */
async function timed(um: UserManager, port: number, args: string[]): Promise<number> {
  const began = performance.now()
  const result = await cli(um, args)
  const elapsed = performance.now() - began
  if (result.code !== 0) throw new Error(`amp-distro ${args.join(' ')} exited ${result.code}:\n${result.stdout}${result.stderr}`)
  const [answered, main] = await Promise.all([healthPid(port, 2000), um.mainPid(SERVER_UNIT)])
  if (answered === undefined || answered !== main) {
    throw new Error(`amp-distro ${args.join(' ')} returned while health answered from ${answered ?? 'nothing'}, not the unit's MainPID ${main}`)
  }

  return elapsed
}

async function main(): Promise<void> {
  const {values, positionals} = benchArgs(USAGE, {rounds: {type: 'string'}})
  if (positionals.length > 0) {
    console.error(`Unexpected argument ${JSON.stringify(positionals[0])}.\n\n${USAGE}`)
    process.exit(2)
  }

  const rounds = wholeArg(USAGE, 'rounds', values.rounds, 5, 1)
  requireBuild()
  for (const command of ['service:install', 'service:start', 'service:restart', 'service:stop', 'serve']) {
    if (!builtCommandExists(command)) throw new Error(`this build has no \`${command.replace(':', ' ')}\` command`)
  }

  console.log(`Machine: ${machineLine()}`)
  console.log(`Before: ${loadLine()}`)
  const um = await startUserManager()
  try {
    const port = await freePort()
    mkdirSync(unitDir(um), {recursive: true})
    writeFileSync(
      join(unitDir(um), FLOOR_UNIT),
      // No start limit: it starts once a round, however many rounds there are.
      `[Unit]\nStartLimitIntervalSec=0\n\n[Service]\nExecStart="${process.execPath}" "${RUN_JS}" "serve" "--host" "127.0.0.1" "--port" "${port}"\n`,
    )
    await systemctlOk(um, 'daemon-reload')

    const times: Record<string, number[]> = {serve: [], systemctl: [], install: [], start: [], restart: []}
    const install = ['service', 'install', '--port', String(port)]
    for (let round = 0; round < rounds; round++) {
      times.serve.push(await bareServe(um, port))
      times.systemctl.push(await plainUnit(um, port))
      // Each round starts the server three times; uninstall at its end makes systemd forget them.
      times.install.push(await timed(um, port, install))
      times.restart.push(await timed(um, port, ['service', 'restart']))
      const stopped = await cli(um, ['service', 'stop'])
      if (stopped.code !== 0) throw new Error(`amp-distro service stop exited ${stopped.code}:\n${stopped.stdout}${stopped.stderr}`)
      times.start.push(await timed(um, port, ['service', 'start']))
      const removed = await cli(um, ['service', 'uninstall'])
      if (removed.code !== 0) throw new Error(`amp-distro service uninstall exited ${removed.code}:\n${removed.stdout}${removed.stderr}`)
    }

    console.log(`After: ${loadLine()}\n`)
    const floor = {serve: median(times.serve), systemctl: median(times.systemctl)}
    const rows = [['to healthy (ms)', 'median', 'min', 'max', '× serve', '× systemctl']]
    for (const [name, list] of Object.entries(times)) {
      const mid = median(list)
      rows.push([name, ms(mid), ms(Math.min(...list)), ms(Math.max(...list)), (mid / floor.serve).toFixed(2), (mid / floor.systemctl).toFixed(2)])
    }

    console.log(`${rounds} rounds; floors: serve (a bare \`amp-distro serve\`) and systemctl (\`systemctl --user start\` of a plain unit running it).`)
    console.log(table(rows))
  } finally {
    await um.stop()
  }
}

main().catch((error: unknown) => {
  console.error(`bench/operate: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
})
