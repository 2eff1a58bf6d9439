import {expect} from 'chai'
import {existsSync} from 'node:fs'

import {checkHealth} from '../../src/lib/health.js'
import {pathsFor} from '../../src/lib/paths.js'
import {isToolProcess} from '../../src/lib/procs.js'
import {RESTART_SEC} from '../../src/lib/service/systemd-unit.js'
import {freePort} from '../helpers/cli.js'
import {healthPid} from '../helpers/processes.js'
import {rssBytes} from '../support/processes.js'
import {cliOk, servePids, steadyServer} from './service-fixtures.js'
import {describeSystemd, pidsInMountNamespace, waitFor} from './systemd-harness.js'

/** How long the soak runs; AMP_DISTRO_SOAK_SECONDS shortens it for a quick local run. */
const SOAK_SECONDS = Number(process.env.AMP_DISTRO_SOAK_SECONDS ?? 600)
/** About one kill a minute, far below the server unit's start limit; a short soak still gets three. */
const KILLS = Math.max(3, Math.floor(SOAK_SECONDS / 60))
/** The wait before each kill; each recovery takes about RestartSec on top. */
const KILL_EVERY_SECONDS = Math.max(5, Math.round(SOAK_SECONDS / KILLS - RESTART_SEC))
const MIB = 2 ** 20

describeSystemd(`soak under systemd: steady health requests for about ${SOAK_SECONDS} s, with a kill -9 of the server ${KILLS} times`, function (manager) {
  it('recovers from every kill, keeps one server, does not grow, and leaves nothing behind after uninstall', async function () {
    if (!Number.isFinite(SOAK_SECONDS) || SOAK_SECONDS < 30) throw new Error(`AMP_DISTRO_SOAK_SECONDS must be at least 30, not ${process.env.AMP_DISTRO_SOAK_SECONDS}`)
    this.timeout((SOAK_SECONDS + 240) * 1000)
    const um = manager()
    const port = await freePort()
    const url = `http://127.0.0.1:${port}/api/health`
    await cliOk(um, ['service', 'install', '--port', String(port)])
    let server = await steadyServer(um, port)

    // Steady load: one request after another, and the number of servers seen alongside.
    let running = true
    const tally = {ok: 0, failed: 0, mostServers: 0}
    const load = (async () => {
      while (running) {
        const answer = await checkHealth(url, 2000)
        if (answer.healthy) tally.ok++
        else tally.failed++
        if ((tally.ok + tally.failed) % 50 === 0) tally.mostServers = Math.max(tally.mostServers, servePids(um).length)
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    })()

    const recoveries: number[] = []
    const rss: number[] = []
    try {
      for (let kill = 0; kill < KILLS; kill++) {
        await new Promise((resolve) => setTimeout(resolve, KILL_EVERY_SECONDS * 1000))
        rss.push(rssBytes(server))
        const killed = server
        const began = Date.now()
        process.kill(killed, 'SIGKILL')
        server = await waitFor(
          async () => {
            const pid = await healthPid(port, 500)
            return pid !== undefined && pid !== killed ? pid : undefined
          },
          {timeoutMs: (RESTART_SEC + 30) * 1000, intervalMs: 100, what: `recovery from kill -9 of ${killed}`},
        )
        recoveries.push(Date.now() - began)
      }
    } finally {
      running = false
      await load
    }

    console.log(
      `      ${recoveries.length} kills, recovered in ${recoveries.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s;` +
        ` health ${tally.ok} ok / ${tally.failed} failed; RSS before each kill ${rss.map((bytes) => (bytes / MIB).toFixed(1)).join(', ')} MiB`,
    )
    expect(tally.mostServers, 'serve processes seen at once').to.equal(1)
    expect(tally.ok).to.be.above(tally.failed)
    // Every server lived as long and served the same load: none may end much larger than the first.
    for (const bytes of rss) expect(bytes, `RSS ${rss.join(', ')}`).to.be.below(rss[0] + 16 * MIB)

    await cliOk(um, ['service', 'uninstall'])
    await waitFor(async () => pidsInMountNamespace(um.namespace).every((pid) => !isToolProcess(pid, 'serve') && !isToolProcess(pid, 'watchdog')), {
      timeoutMs: 30_000,
      what: 'no serve or watchdog process left',
    })
    const paths = pathsFor(um.home, um.env)
    expect([paths.serverPid, paths.watchdogPid].filter((file) => existsSync(file)), 'PID files left behind').to.deep.equal([])
    expect(await healthPid(port, 1000)).to.equal(undefined)
  })
})
