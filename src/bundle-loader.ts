import {lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {tmpdir} from 'node:os'
import {basename, dirname, isAbsolute, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import vm from 'node:vm'

/** The cache folders' name: the tool's own, which every version of it shares. */
const CACHE_NAME = 'amp-distro'

/**
 * Where compiled code of the bundle is kept between runs, as Node's own
 * compile cache does: `$NODE_COMPILE_CACHE/amp-distro` when that is
 * set, otherwise a folder of this user's in the temporary folder (the
 * user's files stay untouched: a dry run writes nothing there). Undefined
 * when `NODE_DISABLE_COMPILE_CACHE` is set.
 */
export function compileCacheDir(env: NodeJS.ProcessEnv, tmp: string, uid: number | undefined): string | undefined {
  if (env.NODE_DISABLE_COMPILE_CACHE) return undefined
  if (env.NODE_COMPILE_CACHE && isAbsolute(env.NODE_COMPILE_CACHE)) return join(env.NODE_COMPILE_CACHE, CACHE_NAME)
  return join(tmp, uid === undefined ? `${CACHE_NAME}-compile-cache` : `${CACHE_NAME}-compile-cache-${uid}`)
}

/**
 * Creates `dir` (mode 0700) when missing and tells whether it is safe to use:
 * a real folder, owned by this user, that nobody else may write. Whoever can
 * write a code cache chooses what runs, and a shared temporary folder lets
 * anyone create a name first.
 */
export function privateDir(dir: string): boolean {
  try {
    mkdirSync(dir, {recursive: true, mode: 0o700})
    const stat = lstatSync(dir)
    if (!stat.isDirectory()) return false
    if (process.platform === 'win32') return true
    return stat.uid === process.getuid?.() && (stat.mode & 0o077) === 0
  } catch {
    return false
  }
}

function save(file: string, data: Buffer): void {
  try {
    const partial = `${file}.${process.pid}.partial`
    writeFileSync(partial, data, {mode: 0o600})
    renameSync(partial, file)
  } catch {
    // A read-only or full disk only costs the next run its head start.
  }
}

function fnv1a(text: string): string {
  let hash = 0x81_1c_9d_c5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01_00_01_93) >>> 0
  return hash.toString(16).padStart(8, '0')
}

/**
 * The cache file for one route (see routeOf) of the bundle at `file`, whose
 * build is `build` (the content hash scripts/bundle.mjs writes on its first
 * line: V8 itself checks only the source's length). V8 keeps the file name a
 * cache was first made for (stack traces would name it), so each copy of the
 * bundle (a checkout, a global install, npx's copy) gets caches of its own:
 * the name carries a hash of the bundle's path, besides the route's, the
 * build and the V8 version. A cache per route keeps each run to the code it
 * needs: `--version` does not read what `--help` compiled.
 */
export function cacheFileName(file: string, build: string, route: string, v8 = process.versions.v8, arch: string = process.arch): string {
  return `${cachePrefix(file, build)}${fnv1a(route)}-v8-${v8}-${arch}.bin`
}

function cachePrefix(file: string, build: string): string {
  return `${copyPrefix(file)}${build}-`
}

function copyPrefix(file: string): string {
  return `${basename(file)}-${fnv1a(file)}-`
}

/** Caches kept per bundle, one per route. */
export const MAX_ROUTES = 32

/**
 * How many caches this build of the bundle at `file` has in `dir`. Caches of
 * the same copy's earlier builds are removed on the way: nothing reads them
 * again.
 */
function keptCaches(dir: string, file: string, build: string): number {
  let kept = 0
  for (const name of readdirSync(dir)) {
    if (name.startsWith(cachePrefix(file, build))) kept++
    else if (name.startsWith(copyPrefix(file)) && name.endsWith('.bin')) rmSync(join(dir, name), {force: true})
  }

  return kept
}

/**
 * What a run of the CLI exercises, for the code cache: the command words
 * (everything before the first flag) and whether help was asked for. Runs
 * with the same route compile the same functions.
 */
export function routeOf(args: readonly string[]): string {
  const words: string[] = []
  for (const arg of args) {
    if (arg.startsWith('-')) break
    words.push(arg)
  }

  return [...words.slice(0, 3), asksForHelp(args) ? '--help' : ''].join(' ').trim()
}

/** Whether a run asks for help anywhere in its arguments: oclif answers it, and the fast path never does. */
export function asksForHelp(args: readonly string[]): boolean {
  return args.some((arg) => arg === '--help' || arg === '-h')
}

export interface LoadOptions {
  /** This run's route (see routeOf), which picks the cache. */
  route?: string
  env?: NodeJS.ProcessEnv
}

/** The bundles this process has run, by absolute path: each runs once, as a module does under require(). */
const loadedBundles = new Map<string, Record<string, unknown>>()

/**
 * Runs the CommonJS bundle at `file` (the oclif bundle, built by
 * scripts/bundle.mjs) and returns its exports.
 *
 * Compiling the bundle costs about as much as running it, and V8 compiles
 * a function when it is first called. Node's own compile cache
 * (module.enableCompileCache) keeps only what was compiled as the file
 * loaded, which for oclif's help is little of what runs (the main bundle,
 * which compiles little, loads under Node's cache). So the bundle is
 * compiled as a vm.Script with V8's code cache for this run's route: read
 * from the cache folder when present, written there at exit, holding every
 * function the run needed, when it was missing or V8 rejected it (another
 * Node), and the run succeeded. The cache folder is used only when it is
 * private to this user, and holds at most MAX_ROUTES caches of one build.
 */
export function loadBundle(file: string, options: LoadOptions = {}): Record<string, unknown> {
  const known = loadedBundles.get(file)
  if (known) return known
  const source = readFileSync(file, 'utf8')
  const dir = compileCacheDir(options.env ?? process.env, tmpdir(), process.getuid?.())
  const build = /^\/\/ build ([0-9a-f]+)\n/.exec(source)?.[1]
  const cache = build && dir && privateDir(dir) ? {dir, file: join(dir, cacheFileName(file, build, options.route ?? ''))} : undefined
  let cachedData: Buffer | undefined
  if (cache) {
    try {
      cachedData = readFileSync(cache.file)
    } catch {
      cachedData = undefined
    }
  }

  // One line of wrapper before the source keeps the bundle's line numbers in stack traces.
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {filename: file, cachedData})
  const module = {exports: {} as Record<string, unknown>}

  // The bundle has no import() (a vm.Script would need an experimental loader
  // hook for it): esbuild turns each into require(). oclif imports by file
  // URL: its command list (package.json: oclif.commands), which names the
  // oclif bundle and is answered with the exports this run has, not a second
  // copy, and the plugins' modules, ES modules that Node's require() loads as well.
  const nodeRequire = createRequire(file)
  const require = Object.assign(
    (id: string): unknown => {
      const path = id.startsWith('file:') ? fileURLToPath(id) : id.startsWith('.') ? join(dirname(file), id) : id
      return loadedBundles.get(path) ?? nodeRequire(path)
    },
    {resolve: nodeRequire.resolve, cache: nodeRequire.cache, main: nodeRequire.main},
  )
  ;(script.runInThisContext() as (...args: unknown[]) => void)(module.exports, require, module, file, dirname(file))
  loadedBundles.set(file, module.exports)
  if (cache && build && (script.cachedDataRejected || (cachedData === undefined && keptCaches(cache.dir, file, build) < MAX_ROUTES))) {
    // At exit the cache holds every function compiled so far. Only a run that
    // succeeded is kept, so that mistyped commands and bad flags take no room.
    process.once('exit', (code) => {
      if (code === 0) save(cache.file, script.createCachedData())
    })
  }

  return module.exports
}
