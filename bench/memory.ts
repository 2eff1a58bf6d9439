#!/usr/bin/env -S node --import tsx
/**
 * Idle footprint: RSS of a running `amp-distro serve` and `amp-distro
 * watchdog` once start-up has settled, next to a bare
 * `node -e 'setInterval(()=>{},1e6)'` started in the same run, and the CPU
 * seconds each uses over an idle window (utime + stime from /proc/<pid>/stat).
 * Linux only (reads /proc).
 */
import {setTimeout as sleep} from 'node:timers/promises'

import {cleanup, RUN_JS, tempHome, waitFor} from '../test/helpers/cli.js'
import {requireBuild} from '../test/helpers/pack.js'
import {builtCommandExists, cpuSeconds, type Launched, launch, rssBytes, startServe, ticksPerSecond} from '../test/helpers/processes.js'
import {SERVER_LIMITS} from '../src/lib/server/server.js'
import {pathsFor} from '../src/lib/paths.js'
import {readPid} from '../src/lib/process/pidfile.js'
import {benchArgs, loadLine, machineLine, median, table, verdict, wholeArg} from './report.js'

const USAGE = `Usage: node --import tsx bench/memory.ts [IDLE_SECONDS] [--settle SECONDS]

Starts a bare \`node -e 'setInterval(()=>{},1e6)'\`, the built \`amp-distro serve\`
and, when the build has it, \`amp-distro watchdog\` watching that server (default
intervals), waits --settle seconds (default 5) for start-up to settle, samples
each one's RSS, then idles IDLE_SECONDS (default 60) and prints the CPU seconds
each used meanwhile. Run \`npm run build\` first. Linux only.
Target: RSS of serve and of watchdog <= 1.25x the bare node process.`

const MAX_RATIO = 1.25
const WATCHDOG_CHECK_INTERVAL_S = 30

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1)

/** Median of several RSS samples, so one sample caught mid-GC does not decide the figure. */
async function sampleRss(pid: number): Promise<number> {
  const samples: number[] = []
  for (let i = 0; i < 5; i++) {
    samples.push(rssBytes(pid))
    await sleep(200)
  }

  return median(samples)
}

async function main(): Promise<void> {
  const {values, positionals} = benchArgs(USAGE, {settle: {type: 'string'}})
  if (positionals.length > 1) {
    console.error(`Too many arguments.\n\n${USAGE}`)
    process.exit(2)
  }

  const idleSeconds = wholeArg(USAGE, 'idle seconds', positionals[0], 60, 1)
  const settleSeconds = wholeArg(USAGE, 'settle seconds', values.settle, 5, 0)
  if (process.platform !== 'linux') throw new Error('bench/memory reads /proc and runs on Linux only')
  requireBuild()

  console.log(`Machine: ${machineLine()}`)
  console.log(`Before: ${loadLine()}`)
  const home = tempHome('amp-distro-bench-')
  const processes: {name: string; running: Launched}[] = []
  try {
    processes.push({name: 'bare node', running: launch(process.execPath, ['-e', 'setInterval(()=>{},1e6)'])})
    const serve = await startServe({home})
    processes.push({name: 'amp-distro serve', running: serve})
    if (builtCommandExists('watchdog')) {
      const watchdog = launch(process.execPath, [RUN_JS, 'watchdog', '--host', '127.0.0.1', '--port', String(serve.port), '--check-interval', String(WATCHDOG_CHECK_INTERVAL_S)], {
        env: {...process.env, HOME: home},
      })
      processes.push({name: 'amp-distro watchdog', running: watchdog})
      // It is up once it has written its PID file.
      await waitFor('the watchdog to write its PID file', () => {
        if (watchdog.child.exitCode !== null) throw new Error(`watchdog exited with ${watchdog.child.exitCode}: ${watchdog.output()}`)
        return readPid(pathsFor(home).watchdogPid) === watchdog.pid
      }, 20_000)
    } else {
      console.log('amp-distro watchdog: not in this build, skipped')
    }

    await sleep(settleSeconds * 1000)
    const measured: {name: string; running: Launched; rss: number; cpu: number}[] = []
    for (const {name, running} of processes) measured.push({name, running, rss: await sampleRss(running.pid), cpu: 0})
    for (const entry of measured) entry.cpu = cpuSeconds(entry.running.pid)

    console.log(`Idling ${idleSeconds} s…`)
    // CPU time sampled each second: a process that sleeps between timer ticks shows CPU only in the seconds it works.
    const busySeconds = measured.map(() => 0)
    let last = measured.map(({running}) => cpuSeconds(running.pid))
    for (let second = 0; second < idleSeconds; second++) {
      await sleep(1000)
      const now = measured.map(({running}) => cpuSeconds(running.pid))
      now.forEach((cpu, i) => (busySeconds[i] += cpu > last[i] ? 1 : 0))
      last = now
    }

    const rows = [['', 'RSS MiB', 'ratio', 'RSS after idle', `CPU s in ${idleSeconds} s`, 'seconds with CPU']]
    const bare = measured[0].rss
    const ratios: {name: string; ratio: number}[] = []
    for (const [i, {name, running, rss, cpu}] of measured.entries()) {
      if (running.child.exitCode !== null) throw new Error(`${name} exited during the idle window: ${running.output()}`)
      const ratio = rss / bare
      if (running !== processes[0].running) ratios.push({name, ratio})
      rows.push([name, mib(rss), `${ratio.toFixed(2)}x`, mib(rssBytes(running.pid)), (cpuSeconds(running.pid) - cpu).toFixed(2), `${busySeconds[i]}/${idleSeconds}`])
    }

    console.log(`After: ${loadLine()}`)
    console.log(`\nRSS after ${settleSeconds} s of settling (median of 5 samples), ratio to the bare node process:`)
    console.log(table(rows))
    console.log('')
    for (const {name, ratio} of ratios) console.log(`${name} RSS: ${ratio.toFixed(2)}x bare (target <= ${MAX_RATIO}x): ${verdict(ratio <= MAX_RATIO)}`)
    console.log(`serve: wakes every ${SERVER_LIMITS.checkIntervalMs / 1000} s to sweep connection deadlines (SERVER_LIMITS.checkIntervalMs in src/lib/server/server.ts)`)
    if (processes.some(({name}) => name === 'amp-distro watchdog')) {
      const checks = Math.floor(idleSeconds / WATCHDOG_CHECK_INTERVAL_S)
      console.log(`watchdog: ${checks} health check(s) due in the window (every ${WATCHDOG_CHECK_INTERVAL_S} s); between checks it should use no CPU,`)
      console.log(`  so "seconds with CPU" should be about the number of checks (CPU time is counted in ${1000 / ticksPerSecond()} ms ticks, so a short check may show none)`)
    }
  } finally {
    await Promise.all(processes.map(({running}) => running.stop()))
    await cleanup()
  }
}

main().catch((error: unknown) => {
  console.error(`bench/memory: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
})
