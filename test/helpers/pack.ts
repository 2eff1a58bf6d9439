import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, relative, sep} from 'node:path'
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
  for (const file of ['dist/amp-distro.cjs', 'dist/bundle-loader.cjs', 'oclif.manifest.json']) {
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
