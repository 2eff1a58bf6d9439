import {lstatSync, mkdirSync, readFileSync, renameSync, writeFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {tmpdir} from 'node:os'
import {basename, dirname, isAbsolute, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import vm from 'node:vm'

import {NAMES} from './lib/paths.js'

/**
 * Where compiled code of the oclif bundle is kept between runs, as Node 22's
 * own compile cache does: `$NODE_COMPILE_CACHE/amp-distro` when that is
 * set, otherwise a folder of this user's in the temporary folder (the
 * user's files stay untouched: a dry run writes nothing there). Undefined
 * when `NODE_DISABLE_COMPILE_CACHE` is set.
 */
export function compileCacheDir(env: NodeJS.ProcessEnv, tmp: string, uid: number | undefined): string | undefined {
  if (env.NODE_DISABLE_COMPILE_CACHE) return undefined
  if (env.NODE_COMPILE_CACHE && isAbsolute(env.NODE_COMPILE_CACHE)) return join(env.NODE_COMPILE_CACHE, NAMES.packageName)
  return join(tmp, uid === undefined ? `${NAMES.packageName}-compile-cache` : `${NAMES.packageName}-compile-cache-${uid}`)
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

function save(file: string, data: Buffer, routes: string[]): void {
  try {
    const partial = `${file}.${process.pid}.partial`
    writeFileSync(partial, data, {mode: 0o600})
    writeFileSync(`${partial}.routes`, `${routes.join('\n')}\n`, {mode: 0o600})
    renameSync(`${partial}.routes`, `${file}.routes`)
    renameSync(partial, file)
  } catch {
    // A read-only or full disk only costs the next run its head start.
  }
}

/**
 * The cache file for the bundle at `file`. V8 keeps the file name a cache was
 * first made for (stack traces would name it), so each copy of the bundle
 * (a checkout, a global install, npx's copy) gets a cache of its own: the
 * name carries a hash of the bundle's path (FNV-1a), besides its content hash
 * and the V8 version.
 */
export function cacheFileName(file: string, v8 = process.versions.v8, arch: string = process.arch): string {
  let hash = 0x81_1c_9d_c5
  for (let i = 0; i < file.length; i++) hash = Math.imul(hash ^ file.charCodeAt(i), 0x01_00_01_93) >>> 0
  return `${basename(file)}-${hash.toString(16).padStart(8, '0')}-v8-${v8}-${arch}.bin`
}

/** Routes recorded per cache before it stops growing (typos make new routes too). */
export const MAX_ROUTES = 32

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

  const help = args.some((arg) => arg === '--help' || arg === '-h')
  return [...words.slice(0, 3), help ? '--help' : ''].join(' ').trim()
}

/** The routes a cache file already covers, from its `.routes` companion (one per line). */
function coveredRoutes(cacheFile: string): string[] {
  try {
    return readFileSync(`${cacheFile}.routes`, 'utf8').split('\n').filter(Boolean)
  } catch {
    return []
  }
}

export interface LoadOptions {
  /** This run's route (see routeOf): a route the cache does not cover yet makes the run extend the cache. */
  route?: string
  /** The ES module that re-exports the bundle: oclif imports it to list the commands, and gets the bundle's exports. */
  self?: URL
  env?: NodeJS.ProcessEnv
}

/**
 * Runs the CommonJS bundle at `url` (oclif and the commands, built by
 * scripts/bundle.mjs) and returns its exports. `libs` are the modules of
 * dist/lib the bundle uses, already imported: they are ES modules, which
 * CommonJS code cannot require on Node 20.
 *
 * Compiling the bundle costs about as much as running it. Node 22 keeps
 * compiled code between runs (module.enableCompileCache); Node 20 does not,
 * so the bundle is compiled as a vm.Script with V8's code cache: read from
 * the cache folder when present, written there at exit when it was missing,
 * V8 rejected it (another Node, another bundle), or this run took a route
 * the cache does not cover yet: V8 compiles functions when first called, and
 * a cache written at exit holds those the run needed, so `serve --help`
 * after `--help` would otherwise compile its own functions every time. V8 checks the cache
 * against the source and its own version; the file name (cacheFileName) carries the
 * bundle's path and content hash and the V8 version. The cache folder is used only
 * when it is private to this user.
 */
export function loadBundle(url: URL, libs: Record<string, unknown>, options: LoadOptions = {}): Record<string, unknown> {
  const file = fileURLToPath(url)
  const source = readFileSync(file, 'utf8')
  const dir = compileCacheDir(options.env ?? process.env, tmpdir(), process.getuid?.())
  const cacheFile = dir && privateDir(dir) ? join(dir, cacheFileName(file)) : undefined
  let cachedData: Buffer | undefined
  let routes: string[] = []
  if (cacheFile) {
    try {
      cachedData = readFileSync(cacheFile)
      routes = coveredRoutes(cacheFile)
    } catch {
      cachedData = undefined
    }
  }

  // One line of wrapper before the source keeps the bundle's line numbers in stack traces.
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname, __ampLib) {${source}\n})`, {filename: file, cachedData})
  const module = {exports: {} as Record<string, unknown>}
  const lib = (name: string): unknown => {
    if (!(name in libs)) throw new Error(`the oclif bundle asked for dist/lib/${name}, which was not passed in`)
    return libs[name]
  }

  // The bundle has no import() (a vm.Script would need an experimental loader
  // hook for it): esbuild turns each into require(). The one oclif makes at
  // run time, for the command list, is answered with the bundle's exports.
  const nodeRequire = createRequire(file)
  const self = options.self && [options.self.href, fileURLToPath(options.self)]
  const require = Object.assign((id: string): unknown => (self?.includes(id) ? module.exports : nodeRequire(id)), {
    resolve: nodeRequire.resolve,
    cache: nodeRequire.cache,
    main: nodeRequire.main,
  })
  ;(script.runInThisContext() as (...args: unknown[]) => void)(module.exports, require, module, file, dirname(file), lib)
  const route = options.route ?? ''
  const fresh = cachedData === undefined || script.cachedDataRejected
  if (cacheFile && (fresh || (!routes.includes(route) && routes.length < MAX_ROUTES))) {
    // At exit the cache holds every function compiled so far: those it had and those this run added.
    const next = fresh ? [route] : [...routes, route]
    process.once('exit', () => save(cacheFile, script.createCachedData(), next))
  }

  return module.exports
}
