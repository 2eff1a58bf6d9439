import {lstatSync, mkdirSync, readFileSync, renameSync, writeFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {tmpdir} from 'node:os'
import {basename, dirname, isAbsolute, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import vm from 'node:vm'

import {NAMES} from './lib/paths.js'

/**
 * Where compiled code of the oclif bundle is kept between runs, as Node 22's
 * own compile cache does: `$NODE_COMPILE_CACHE/amplifier-distro` when that is
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

function save(file: string, data: Buffer): void {
  try {
    const partial = `${file}.${process.pid}.partial`
    writeFileSync(partial, data, {mode: 0o600})
    renameSync(partial, file)
  } catch {
    // A read-only or full disk only costs the next run its head start.
  }
}

export interface LoadOptions {
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
 * the cache folder when present, written there at exit when it was missing
 * or V8 rejected it (another Node, another bundle). V8 checks the cache
 * against the source and its own version, and the file name carries the
 * bundle's content hash and the V8 version. The cache folder is used only
 * when it is private to this user.
 */
export function loadBundle(url: URL, libs: Record<string, unknown>, options: LoadOptions = {}): Record<string, unknown> {
  const file = fileURLToPath(url)
  const source = readFileSync(file, 'utf8')
  const dir = compileCacheDir(options.env ?? process.env, tmpdir(), process.getuid?.())
  const cacheFile = dir && privateDir(dir) ? join(dir, `${basename(file)}-v8-${process.versions.v8}-${process.arch}.bin`) : undefined
  let cachedData: Buffer | undefined
  if (cacheFile) {
    try {
      cachedData = readFileSync(cacheFile)
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
  if (cacheFile && (cachedData === undefined || script.cachedDataRejected)) {
    // At exit the cache also holds every function this run compiled, not only the top level.
    process.once('exit', () => save(cacheFile, script.createCachedData()))
  }

  return module.exports
}
