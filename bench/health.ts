#!/usr/bin/env -S node --import tsx
/**
 * Throughput and latency of `amp-distro serve`'s /api/health, next to a bare
 * node:http server answering the same JSON, measured in the same run with
 * the two alternating (A B, B A, …) so that drift on a shared machine hits
 * both alike. Loopback only, bounded: `rounds` × 2 runs of `duration` seconds.
 */
import {cleanup, freePort, tempHome, waitFor} from '../test/helpers/cli.js'
import {requireBuild} from '../test/helpers/pack.js'
import {launch, startServe} from '../test/helpers/processes.js'
import {checkHealth} from '../src/lib/server/health.js'
import {packageInfo} from '../src/lib/pkg.js'
import {benchArgs, loadLine, machineLine, median, table, verdict, wholeArg} from './report.js'
import {runWrk, type WrkResult} from './wrk.js'

const USAGE = `Usage: node --import tsx bench/health.ts [--rounds N] [--duration SECONDS] [--connections N]

Runs wrk (-t1 --latency) against the /api/health of a real \`amp-distro serve\`
(the built CLI: run \`npm run build\` first) and of a bare node:http server,
alternating, and prints requests/s, p50 and p99 of each and the ratio.
Defaults: 3 rounds of 5 s per server, 10 connections. Needs Debian's wrk.
Targets: serve >= 0.9x the bare server's requests/s; serve p99 <= 3 ms.`

const MIN_RATIO = 0.9
const MAX_P99_MS = 3

// The floor: node:http with the same body fields and headers as src/lib/server/server.ts, and nothing else.
const BARE_SERVER = `
const {createServer} = require('node:http')
const started = performance.now()
createServer((req, res) => {
  const body = JSON.stringify({status: 'ok', name: 'Amplifier distro server', version: process.env.VERSION, pid: process.pid, uptimeSeconds: Math.floor((performance.now() - started) / 1000)})
  res.writeHead(200, {'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body), 'Content-Type': 'application/json'})
  res.end(body)
}).listen({host: '127.0.0.1', port: Number(process.env.PORT)})
`

async function main(): Promise<void> {
  const {values, positionals} = benchArgs(USAGE, {rounds: {type: 'string'}, duration: {type: 'string'}, connections: {type: 'string'}})
  if (positionals.length > 0) {
    console.error(`Unexpected argument ${JSON.stringify(positionals[0])}.\n\n${USAGE}`)
    process.exit(2)
  }

  const rounds = wholeArg(USAGE, 'rounds', values.rounds, 3, 1)
  const seconds = wholeArg(USAGE, 'duration', values.duration, 5, 1)
  const connections = wholeArg(USAGE, 'connections', values.connections, 10, 1)
  requireBuild()

  console.log(`Machine: ${machineLine()}`)
  console.log(`Before: ${loadLine()}`)
  const home = tempHome('amp-distro-bench-')
  const serve = await startServe({home})
  const barePort = await freePort()
  const bare = launch(process.execPath, ['-e', BARE_SERVER], {env: {...process.env, PORT: String(barePort), VERSION: packageInfo().version}})
  try {
    const bareUrl = `http://127.0.0.1:${barePort}/api/health`
    await waitFor('the bare server', async () => (await checkHealth(bareUrl, 1000)).healthy, 10_000)
    const targets = [
      {name: 'amp-distro serve', url: `${serve.url}/api/health`, runs: [] as WrkResult[]},
      {name: 'bare node:http', url: bareUrl, runs: [] as WrkResult[]},
    ]

    // One short untimed run each so that neither side is measured before its JIT has warmed up.
    for (const target of targets) await runWrk(target.url, {connections, seconds: 1})
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? targets : [...targets].reverse()
      for (const target of order) {
        const result = await runWrk(target.url, {connections, seconds})
        if (result.errors > 0) throw new Error(`${target.name}: ${result.errors} errors or non-2xx answers in round ${round + 1}`)
        target.runs.push(result)
        console.log(`  round ${round + 1} ${target.name.padEnd(16)} ${result.requestsPerSecond.toFixed(0).padStart(7)} req/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms`)
      }
    }

    console.log(`After: ${loadLine()}`)
    const [ours, floor] = targets
    const rows = [['', 'req/s', 'p50 ms', 'p99 ms']]
    for (const target of targets) {
      rows.push([
        target.name,
        median(target.runs.map((r) => r.requestsPerSecond)).toFixed(0),
        median(target.runs.map((r) => r.p50Ms)).toFixed(2),
        median(target.runs.map((r) => r.p99Ms)).toFixed(2),
      ])
    }

    console.log(`\nMedians over ${rounds} round(s) of ${seconds} s, ${connections} connections, wrk -t1:`)
    console.log(table(rows))
    // Each round's two runs ran back to back, so their ratio is the least drift-prone figure.
    const ratio = median(ours.runs.map((r, i) => r.requestsPerSecond / floor.runs[i].requestsPerSecond))
    const p99 = median(ours.runs.map((r) => r.p99Ms))
    console.log(`\nthroughput ratio serve/bare: ${ratio.toFixed(2)}x (target >= ${MIN_RATIO}x): ${verdict(ratio >= MIN_RATIO)}`)
    console.log(`serve p99: ${p99.toFixed(2)} ms (target <= ${MAX_P99_MS} ms): ${verdict(p99 <= MAX_P99_MS)}`)
  } finally {
    await Promise.all([serve.stop(), bare.stop()])
    await cleanup()
  }
}

main().catch((error: unknown) => {
  console.error(`bench/health: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
})
