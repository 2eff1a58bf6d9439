#!/usr/bin/env -S node --import tsx
/**
 * Recovery times under a real systemd user manager (the e2e harness: a
 * private `systemd --user` in its own mount namespace, temporary HOME, free
 * port), each printed next to its bound:
 * - crash: `kill -9` of the server's main PID until /api/health answers
 *   again from a new PID; bound RestartSec + 1 s.
 * - hang: `kill -STOP` of the server's main PID, with the watchdog's
 *   intervals shortened by a drop-in, until health answers from a new main
 *   PID; bound restart-after + check-interval + the watchdog's stop grace + 2 s.
 */
import {SERVER_UNIT, WATCHDOG_UNIT} from '../src/lib/service/drivers/systemd/unit.js'
import {serverStopDeps} from '../src/lib/process/stop-pid-file.js'
import {cliOk, shortenWatchdogIntervals, steadyServer, steadyWatchdog, systemctlOk} from '../test/e2e/service-fixtures.js'
import {isRunning, startUserManager, waitFor} from '../test/e2e/systemd-harness.js'
import {freePort} from '../test/helpers/cli.js'
import {builtCommandExists, healthPid} from '../test/helpers/processes.js'
import {requireBuild} from '../test/helpers/pack.js'
import {benchArgs, loadLine, machineLine, median, verdict, wholeArg} from './report.js'

const USAGE = `Usage: node --import tsx bench/recovery.ts [--crashes N] [--hangs N]

Starts a private systemd user manager (the e2e harness: needs Linux, root,
systemd, util-linux and bsdutils), runs \`amp-distro service install\` from this
build into a temporary HOME on a free port, then measures:
  --crashes N  kill -9 of the server until health answers again (default 3)
  --hangs N    kill -STOP of the server, with a drop-in running the watchdog
               at --check-interval 1 --restart-after 3, until health answers
               from a new main PID (default 2)
Run \`npm run build\` first. Each figure is printed next to its bound.`

const CHECK_INTERVAL_S = 1
const RESTART_AFTER_S = 3

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`

/** Parses a systemd time span as `systemctl show` prints it (`5s`, `100ms`, `1min 30s`) into seconds. */
function parseTimespan(text: string): number {
  const units: Record<string, number> = {us: 1e-6, ms: 1e-3, s: 1, min: 60, h: 3600}
  const parts = [...text.trim().matchAll(/(\d+(?:\.\d+)?)\s*(us|ms|s|min|h)/g)]
  if (parts.length === 0 || parts.map((part) => part[0]).join('').replace(/\s/g, '') !== text.replace(/\s/g, '')) {
    throw new Error(`cannot read systemd time span ${JSON.stringify(text)}`)
  }

  return parts.reduce((sum, [, value, unit]) => sum + Number(value) * units[unit], 0)
}

/** Sends `signal` to `pid` and returns the milliseconds until health answers from a PID other than `pid`. */
async function timeToNewPid(port: number, pid: number, signal: NodeJS.Signals, timeoutMs: number): Promise<number> {
  const began = performance.now()
  process.kill(pid, signal)
  await waitFor(
    async () => {
      const answered = await healthPid(port, 500)
      return answered !== undefined && answered !== pid
    },
    {timeoutMs, intervalMs: 50, what: `health from a new server after ${signal} to PID ${pid}`},
  )
  return performance.now() - began
}

function report(label: string, times: number[], boundS: number, boundText: string): void {
  if (times.length === 0) return
  const worst = Math.max(...times)
  console.log(`${label}: ${times.map(seconds).join(', ')} (median ${seconds(median(times))}, worst ${seconds(worst)})`)
  console.log(`  bound ${boundText} = ${boundS} s: ${verdict(worst <= boundS * 1000)}`)
}

async function main(): Promise<void> {
  const {values, positionals} = benchArgs(USAGE, {crashes: {type: 'string'}, hangs: {type: 'string'}})
  if (positionals.length > 0) {
    console.error(`Unexpected argument ${JSON.stringify(positionals[0])}.\n\n${USAGE}`)
    process.exit(2)
  }

  const crashes = wholeArg(USAGE, 'crashes', values.crashes, 3, 0)
  const hangs = wholeArg(USAGE, 'hangs', values.hangs, 2, 0)
  requireBuild()
  for (const command of ['service:install', 'watchdog']) {
    if (!builtCommandExists(command)) throw new Error(`this build has no \`${command.replace(':', ' ')}\` command`)
  }

  console.log(`Machine: ${machineLine()}`)
  console.log(`Before: ${loadLine()}`)
  const um = await startUserManager()
  const stopped: number[] = []
  try {
    const port = await freePort()
    await cliOk(um, ['service', 'install', '--port', String(port)])
    await steadyServer(um, port)
    const restartS = parseTimespan((await um.show(SERVER_UNIT, ['RestartUSec'])).RestartUSec)
    console.log(`Installed on port ${port}; the server unit has RestartSec=${restartS} s.`)

    const crashTimes: number[] = []
    for (let i = 0; i < crashes; i++) {
      // Forget earlier starts, so that systemd's start limit measures nothing but this trial.
      await systemctlOk(um, 'reset-failed', SERVER_UNIT, WATCHDOG_UNIT)
      const pid = await steadyServer(um, port)
      crashTimes.push(await timeToNewPid(port, pid, 'SIGKILL', 60_000))
    }

    const hangTimes: number[] = []
    const graceS = serverStopDeps().graceMs / 1000
    if (hangs > 0) {
      const dropIn = await shortenWatchdogIntervals(um, CHECK_INTERVAL_S, RESTART_AFTER_S)
      console.log(`Watchdog drop-in ${dropIn}: --check-interval ${CHECK_INTERVAL_S} --restart-after ${RESTART_AFTER_S}`)
    }

    for (let i = 0; i < hangs; i++) {
      await systemctlOk(um, 'reset-failed', SERVER_UNIT, WATCHDOG_UNIT)
      const pid = await steadyServer(um, port)
      const watchdogPid = await steadyWatchdog(um)
      stopped.push(pid)
      hangTimes.push(await timeToNewPid(port, pid, 'SIGSTOP', 120_000))
      const gone = await waitFor(async () => !isRunning(pid), {timeoutMs: 15_000, what: `the hung server ${pid} to be gone`}).catch(() => false)
      if (!gone) throw new Error(`the hung server (PID ${pid}) survived its replacement (watchdog PID ${watchdogPid})`)
    }

    console.log(`After: ${loadLine()}\n`)
    report('kill -9 of the server -> healthy again', crashTimes, restartS + 1, `RestartSec ${restartS} s + 1 s`)
    report(
      'kill -STOP of the server -> healthy from a new main PID',
      hangTimes,
      RESTART_AFTER_S + CHECK_INTERVAL_S + graceS + 2,
      `restart-after ${RESTART_AFTER_S} s + check-interval ${CHECK_INTERVAL_S} s + stop grace ${graceS} s + 2 s`,
    )
  } finally {
    // A stopped process left behind would hold its port until killed; the manager's stop kills the rest.
    for (const pid of stopped) if (isRunning(pid)) process.kill(pid, 'SIGKILL')
    await um.stop()
  }
}

main().catch((error: unknown) => {
  console.error(`bench/recovery: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
})
