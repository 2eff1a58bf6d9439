import {type ChildProcess, execFileSync, spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {exitOf, freePort, http, waitFor} from './cli.js'
import {ROOT, scratchDir} from './pack.js'

/** The folder holding verdaccio's package.json and lockfile (verdaccio 6.8.0, node-fetch pinned for Node 20). */
const FIXTURE = join(ROOT, 'test', 'fixtures', 'verdaccio')

export interface Registry {
  /** `http://127.0.0.1:<port>/` */
  url: string
  /** A user config naming this registry and a token it accepts for publishing. */
  npmrc: string
  /** What verdaccio printed so far. */
  log(): string
  stop(): Promise<void>
}

/**
 * Installs verdaccio from its lockfile into `tmp/verdaccio/<lockfile hash>/`,
 * once per lockfile, and returns its launcher script.
 *
 * Steps:
 * 1. Reuse the folder when an earlier run finished installing it.
 * 2. Otherwise `npm ci` in a staging folder beside it, then rename it into
 *    place, so an interrupted install is never taken for a complete one.
 */
export function installVerdaccio(): string {
  const lock = readFileSync(join(FIXTURE, 'package-lock.json'))
  const home = join(ROOT, 'tmp', 'verdaccio', createHash('sha256').update(lock).digest('hex').slice(0, 12))
  const bin = join(home, 'node_modules', 'verdaccio', 'bin', 'verdaccio')
  if (existsSync(join(home, '.installed'))) return bin

  mkdirSync(join(home, '..'), {recursive: true})
  const staging = mkdtempSync(`${home}-`)
  try {
    for (const file of ['package.json', 'package-lock.json']) writeFileSync(join(staging, file), readFileSync(join(FIXTURE, file)))
    execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], {cwd: staging, stdio: ['ignore', 'pipe', 'pipe']})
    writeFileSync(join(staging, '.installed'), '')
    try {
      renameSync(staging, home)
    } catch (error) {
      // Another test process installed the same lockfile first.
      if (!existsSync(join(home, '.installed'))) throw error
    }
  } finally {
    rmSync(staging, {force: true, recursive: true})
  }

  return bin
}

/**
 * Starts verdaccio on a free 127.0.0.1 port, with storage in a scratch folder.
 *
 * Steps:
 * 1. Install verdaccio (installVerdaccio).
 * 2. Write its config into the scratch folder: `packageName` may be published
 *    by anyone and is never looked up elsewhere, so it exists only here; every
 *    other package is proxied to the registry npm is configured with
 *    (`npm config get registry`, read now and never written into the project).
 * 3. Start it in a process group of its own and wait for `GET /-/ping`.
 * 4. Write an npm user config with a token for it, since npm wants one to publish.
 *
 * @throws when verdaccio cannot be installed or does not answer within a minute
 */
export async function startRegistry(packageName: string): Promise<Registry> {
  const bin = installVerdaccio()
  const dir = scratchDir('amp-registry-')
  const upstream = execFileSync('npm', ['config', 'get', 'registry'], {encoding: 'utf8'}).trim()
  const config = join(dir, 'config.yaml')
  writeFileSync(
    config,
    [
      `storage: ${JSON.stringify(join(dir, 'storage'))}`,
      'auth:',
      '  htpasswd:',
      `    file: ${JSON.stringify(join(dir, 'htpasswd'))}`,
      '    max_users: -1',
      'uplinks:',
      '  upstream:',
      `    url: ${JSON.stringify(upstream)}`,
      'packages:',
      `  ${JSON.stringify(packageName)}:`,
      '    access: $all',
      '    publish: $anonymous',
      "  '**':",
      '    access: $all',
      '    proxy: upstream',
      'log: {type: stdout, format: pretty, level: warn}',
      '',
    ].join('\n'),
  )

  const port = await freePort()
  const url = `http://127.0.0.1:${port}/`
  let output = ''
  const child: ChildProcess = spawn(process.execPath, [bin, '--config', config, '--listen', `127.0.0.1:${port}`], {
    cwd: dir,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  const exited = exitOf(child)
  // A test process that dies without its after hooks still takes the registry down with it.
  const killOnExit = (): void => {
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {
      // the registry is gone already
    }
  }

  process.once('exit', killOnExit)

  const stop = async (): Promise<void> => {
    process.off('exit', killOnExit)
    if (child.exitCode !== null || child.signalCode !== null) return
    process.kill(-child.pid!, 'SIGTERM')
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }

  try {
    await waitFor(
      'verdaccio to answer /-/ping',
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`verdaccio exited (${child.exitCode ?? child.signalCode}): ${output.trim()}`)
        return (await http(`${url}-/ping`).catch(() => undefined))?.status === 200
      },
      60_000,
      200,
    )
  } catch (error) {
    await stop()
    throw error
  }

  const npmrc = join(dir, 'npmrc')
  writeFileSync(npmrc, `registry=${url}\n//127.0.0.1:${port}/:_authToken=amp-distro-tests\n`)
  return {url, npmrc, log: () => output, stop}
}
