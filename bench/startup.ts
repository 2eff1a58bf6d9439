/**
 * Start-up time of amp-distro against bare Node on this machine: `node -e 0`
 * (the floor) and the CLI's commands side by side, each as a ratio of
 * medians to the floor, next to its target; exits 1 when a target is missed.
 * Both run on the active LTS line, Node 26, installed from the npm registry
 * at the version pinned in scripts/node-binaries.json, unless --node names
 * another line or a node binary.
 *
 * - Always: in a temporary HOME with no service installed.
 * - With --installed: `service status` of an installed, healthy service
 *   under a real systemd user manager (the end-to-end harness; Linux, root).
 *
 * Node 20 reads the certificates named by NODE_EXTRA_CA_CERTS at start-up,
 * which adds the same fixed time to the floor and to every command and so
 * flatters every ratio. The targets are checked without that variable; when
 * it is set here, each set is measured with it too, for reference.
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {isAbsolute, join, resolve} from 'node:path'

import {cliOk, steadyServer, steadyWatchdog} from '../test/e2e/service-fixtures.js'
import {startUserManager} from '../test/e2e/systemd-harness.js'
import {freePort, RUN_JS} from '../test/helpers/cli.js'
import {requireBuild, ROOT} from '../test/helpers/pack.js'
import {builtCommandExists} from '../test/helpers/processes.js'
import {benchArgs, loadLine, machineLine, median, wholeArg} from './report.js'

const USAGE = `Usage: bench/startup [--installed] [--node LINE|PATH] [--rounds N] [--runs N] [COMMAND]

Times, with hyperfine, \`node -e 0\` and amp-distro's --version, --help,
serve --help, service status and watchdog --help in a temporary HOME, in
interleaved rounds, and prints each median as a ratio to \`node -e 0\`.
  COMMAND      what runs amp-distro (default: node bin/run.js of this checkout)
  --node       the Node that runs the floor and bin/run.js: a line pinned in
               scripts/node-binaries.json, installed from the npm registry on
               first use, or the path of a node binary (default: 26)
  --installed  also time \`service status\` of an installed, healthy service
               under a private systemd user manager (this checkout only;
               Linux, root, and systemd, util-linux and bsdutils, as the
               end-to-end tests)
  --rounds N   rounds (default 10)
  --runs N     runs of each command in each round (default 4)
Run \`npm run build\` first. Exits 1 when a target is missed.`

interface Case {
  name: string
  args: string[]
  /** The guard, as a ratio to `node -e 0`; a case without one is only reported. */
  target?: number
  needs?: string
}

const CASES: Case[] = [
  {name: 'amp-distro --version', args: ['--version'], target: 1.25},
  {name: 'amp-distro --help', args: ['--help'], target: 2.8},
  {name: 'amp-distro serve --help', args: ['serve', '--help'], target: 2.8, needs: 'serve'},
  {name: 'amp-distro service status', args: ['service', 'status'], target: 1.6, needs: 'service:status'},
  {name: 'amp-distro watchdog --help', args: ['watchdog', '--help'], needs: 'watchdog'},
]

const INSTALLED: Case = {name: 'amp-distro service status', args: ['service', 'status']}

/** Runs hyperfine with `args` in `env` (variables added to the runner's own). */
type Hyperfine = (args: string[], env: NodeJS.ProcessEnv) => Promise<void>

interface Variant {
  label: string
  env: NodeJS.ProcessEnv
  checked: boolean
}

function quote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`
}

/**
 * Times the floor and `cases` in `rounds` short hyperfine rounds rather than
 * once per command, so that load from other processes, which comes and goes,
 * falls on every command alike; the medians are over all rounds. Prints the
 * table and returns false when a checked target is missed.
 */
async function timeCases(title: string, node: string, cli: string[], cases: Case[], variant: Variant, hyperfine: Hyperfine, scratch: string, shape: {rounds: number; runs: number}): Promise<boolean> {
  const commands = [`${quote(node)} -e 0`, ...cases.map((entry) => [...cli, ...entry.args].map((word) => quote(word)).join(' '))]
  const names = ['node -e 0', ...cases.map((entry) => entry.name)]
  const json = join(scratch, 'hyperfine.json')
  const times: number[][] = commands.map(() => [])
  for (let round = 0; round < shape.rounds; round++) {
    const args = ['-N', '-i', '--warmup', round === 0 ? '3' : '1', '--runs', String(shape.runs), '--style', 'none', '--export-json', json]
    await hyperfine([...args, ...names.flatMap((name) => ['-n', name]), ...commands], variant.env)
    const {results} = JSON.parse(readFileSync(json, 'utf8')) as {results: Array<{times: number[]}>}
    results.forEach((result, i) => times[i].push(...result.times))
  }

  const ms = (seconds: number) => `${(seconds * 1000).toFixed(1).padStart(6)} ms`
  const floor = median(times[0])
  let met = true
  console.log(`\n${title}, ${variant.label}: ${shape.rounds} rounds of ${shape.runs} runs; medians and ratios to node -e 0`)
  console.log(`  ${'node -e 0'.padEnd(28)} ${ms(floor)}  1.00×`)
  cases.forEach((entry, i) => {
    const ratio = median(times[i + 1]) / floor
    const target = entry.target
    let note = target === undefined ? '(reported)' : `(target ≤ ${target.toFixed(2)}×)`
    if (variant.checked && target !== undefined) {
      met &&= ratio <= target
      note = `${ratio <= target ? 'ok' : 'OVER'} ${note}`
    }

    console.log(`  ${entry.name.padEnd(28)} ${ms(median(times[i + 1]))}  ${ratio.toFixed(2)}×  ${note}`)
  })
  return met
}

/** The environments to measure in: without NODE_EXTRA_CA_CERTS (checked), and with it when it is set here. */
function variants(asItIs: NodeJS.ProcessEnv, without: NodeJS.ProcessEnv): Variant[] {
  const checked = {label: 'without NODE_EXTRA_CA_CERTS', env: without, checked: true}
  if (!process.env.NODE_EXTRA_CA_CERTS) return [checked]
  return [checked, {label: 'with NODE_EXTRA_CA_CERTS as set here (for reference)', env: asItIs, checked: false}]
}

/** The path of a pinned Node line's binary, installed from the npm registry on first use (scripts/node-binary.mjs). */
function pinnedNode(line: string): string {
  const run = spawnSync(process.execPath, [join(ROOT, 'scripts', 'node-binary.mjs'), line], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit']})
  if (run.status !== 0) throw new Error(`cannot install Node ${line} (scripts/node-binary.mjs exited ${run.status})`)
  return run.stdout.trim()
}

/** Whether the CLI has a command: this build's manifest says, another CLI is asked for the command's help. */
function hasCommand(cli: string[], own: boolean, id: string): boolean {
  if (own) return builtCommandExists(id)
  return spawnSync(cli[0], [...cli.slice(1), ...id.split(':'), '--help'], {stdio: 'ignore'}).status === 0
}

async function uninstalled(node: string, cli: string[], own: boolean, shape: {rounds: number; runs: number}): Promise<boolean> {
  const cases = CASES.filter((entry) => {
    if (!entry.needs || hasCommand(cli, own, entry.needs)) return true
    console.log(`skipped: ${entry.name} (no ${entry.needs.replace(':', ' ')} command in this build)`)
    return false
  })
  const home = mkdtempSync(join(tmpdir(), 'amp-bench-startup-'))
  const hyperfine: Hyperfine = async (args, env) => {
    // hyperfine's own notes (outliers, say) would break up the tables; its output is shown when it fails.
    const run = spawnSync('hyperfine', args, {stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', env})
    if (run.error) throw new Error(`hyperfine failed: ${run.error.message} (install it: apt-get install hyperfine)`)
    if (run.status !== 0) throw new Error(`hyperfine failed (exit ${run.status}): ${run.stderr.trim()}`)
  }

  try {
    const without: NodeJS.ProcessEnv = {...process.env, HOME: home}
    delete without.NODE_EXTRA_CA_CERTS
    let met = true
    for (const variant of variants({...process.env, HOME: home}, without)) {
      met = (await timeCases('No service installed (temporary HOME)', node, cli, cases, variant, hyperfine, home, shape)) && met
    }

    return met
  } finally {
    rmSync(home, {recursive: true, force: true})
  }
}

async function installed(node: string, cli: string[], shape: {rounds: number; runs: number}): Promise<boolean> {
  const um = await startUserManager()
  try {
    const port = await freePort()
    await cliOk(um, ['service', 'install', '--port', String(port)])
    await steadyServer(um, port)
    await steadyWatchdog(um)
    const status = await cliOk(um, ['service', 'status'])
    if (!/ healthy$/m.test(status)) throw new Error(`the installed service is not healthy:\n${status}`)
    const hyperfine: Hyperfine = async (args, env) => {
      const run = await um.run('hyperfine', args, {env, timeoutMs: 600_000})
      if (run.code !== 0) throw new Error(`hyperfine failed in the user manager's namespace (exit ${run.code}): ${run.stderr.trim()}`)
    }

    // Commands in the namespace get the manager's own small environment; the variable is added where it is set here.
    const certs = process.env.NODE_EXTRA_CA_CERTS ? {NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS} : {}
    let met = true
    for (const variant of variants(certs, {})) {
      met = (await timeCases('Installed and healthy (systemd user manager)', node, cli, [INSTALLED], variant, hyperfine, um.home, shape)) && met
    }

    return met
  } finally {
    await um.stop()
  }
}

const {values, flags, positionals} = benchArgs(USAGE, {installed: {type: 'boolean'}, node: {type: 'string'}, rounds: {type: 'string'}, runs: {type: 'string'}})
if (positionals.length > 1 || (flags.has('installed') && positionals.length > 0)) {
  console.error(`${positionals.length > 1 ? 'Too many arguments.' : '--installed measures the build in this checkout; it takes no COMMAND.'}\n\n${USAGE}`)
  process.exit(2)
}

const shape = {rounds: wholeArg(USAGE, 'rounds', values.rounds, 10, 1), runs: wholeArg(USAGE, 'runs', values.runs, 4, 1)}
const own = positionals.length === 0
if (own) requireBuild()
const nodeArg = typeof values.node === 'string' ? values.node : '26'
const node = isAbsolute(nodeArg) || nodeArg.includes('/') ? resolve(nodeArg) : pinnedNode(nodeArg)
const cli = own ? [node, RUN_JS] : [positionals[0]]
console.log(`Machine: ${machineLine()}`)
console.log(`Node: ${spawnSync(node, ['--version'], {encoding: 'utf8'}).stdout.trim()} (${node})`)
console.log(`Before: ${loadLine()}; measuring: ${cli.map((word) => quote(word)).join(' ')}`)
let met = await uninstalled(node, cli, own, shape)
if (flags.has('installed')) met = (await installed(node, cli, shape)) && met
console.log(`\nAfter: ${loadLine()}`)
process.exitCode = met ? 0 : 1
