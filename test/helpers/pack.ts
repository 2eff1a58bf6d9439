import {execFileSync} from 'node:child_process'
import {accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {basename, delimiter, join, relative, sep} from 'node:path'
import {fileURLToPath} from 'node:url'

/** The repository root (where package.json lives). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** Every file under `dir`, as `/`-separated paths relative to it, sorted. */
export function listFiles(dir: string): string[] {
  const walk = (at: string): string[] =>
    readdirSync(at, {withFileTypes: true}).flatMap((entry) => {
      const file = join(at, entry.name)
      return entry.isDirectory() ? walk(file) : [relative(dir, file).split(sep).join('/')]
    })
  return walk(dir).sort()
}

/** Fails early with a clear message when the build output tests rely on is missing. */
export function requireBuild(): void {
  for (const file of ['dist/amp-distro.cjs', 'dist/oclif.cjs', 'dist/version.cjs', 'oclif.manifest.json']) {
    if (!existsSync(join(ROOT, file))) throw new Error(`${file} is missing: run \`npm run build\` first`)
  }
}

/**
 * Runs `npm pack` for the package in `root` and returns the tarball's path.
 * Lifecycle scripts are skipped: the tests pack what the build produced.
 */
export function npmPack(root: string, destination = mkdtempSync(join(tmpdir(), 'amp-pack-'))): string {
  mkdirSync(destination, {recursive: true})
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', destination], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const [{filename}] = JSON.parse(out) as [{filename: string}]
  return join(destination, filename)
}

/** Unpacks an npm tarball into a fresh directory and returns the package folder inside it. */
export function unpack(tarball: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'amp-unpack-'))
  execFileSync('tar', ['-xzf', tarball, '-C', dir])
  return join(dir, 'package')
}

const scratch: string[] = []
process.once('exit', () => {
  for (const dir of scratch) rmSync(dir, {recursive: true, force: true})
})

/** A temporary directory removed when the test process exits. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  scratch.push(dir)
  return dir
}

let tarball: string | undefined
/** The package as `npm pack` makes it from the current build; packed once per test process. */
export function packageTarball(): string {
  tarball ??= npmPack(ROOT, scratchDir('amp-npm-tarball-'))
  return tarball
}

let prefix: string | undefined
/**
 * `npm install -g --prefix <dir> <tarball>` into a fresh directory, once per
 * test process; returns the prefix (the command is `<prefix>/bin/amp-distro`).
 */
export function globalInstall(): string {
  if (prefix === undefined) {
    const dir = scratchDir('amp-npm-global-')
    execFileSync('npm', ['install', '-g', '--prefix', dir, '--no-audit', '--no-fund', '--loglevel=error', packageTarball()], {stdio: ['ignore', 'pipe', 'pipe']})
    prefix = dir
  }

  return prefix
}

/** PATH without any folder that holds an `amp-distro`, so only what a test adds can be found. */
export function pathWithoutAmpDistro(): string {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => {
      try {
        accessSync(join(dir, 'amp-distro'), constants.X_OK)
        return false
      } catch {
        return true
      }
    })
    .join(delimiter)
}

/** The targets `npm run pack:tarballs` builds by default. */
export const TARBALL_TARGETS = ['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64'] as const

/** The Node version the standalone tarballs carry (`oclif.update.node.version` in package.json). */
export function tarballNodeVersion(): string {
  const pjson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {oclif: {update: {node: {version: string}}}}
  return pjson.oclif.update.node.version
}

let tarballs: Record<string, string> | undefined
/**
 * `npm run pack:tarballs` (every target), once per test process; returns
 * target → tarball path, from the paths the script prints.
 */
export function standaloneTarballs(): Record<string, string> {
  if (tarballs === undefined) {
    const out = execFileSync(process.execPath, [join(ROOT, 'scripts', 'pack-tarballs.mjs')], {cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 16 * 1024 * 1024})
    const built: Record<string, string> = {}
    for (const file of out.trim().split('\n')) {
      const target = TARBALL_TARGETS.find((name) => basename(file).endsWith(`-${name}.tar.gz`))
      if (target) built[target] = file
    }

    tarballs = built
  }

  return tarballs
}

/** Unpacks the given members (or all) of a standalone tarball into a scratch folder; returns the folder. */
export function unpackStandalone(tarball: string, members: string[] = []): string {
  const dir = scratchDir('amp-standalone-')
  execFileSync('tar', ['-xzf', tarball, '-C', dir, ...members])
  return dir
}
