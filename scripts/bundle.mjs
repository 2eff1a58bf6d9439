// Builds, with esbuild, what bin/run.js loads:
//
// 1. dist/lib/fast-path.cjs: the fast path, the actions and the lib modules
//    they use, in one CommonJS file.
//
// 2. The oclif side of the CLI (oclif, @oclif/plugin-help and every
// command under src/commands) into one minified CommonJS bundle,
// dist/oclif.<hash>.cjs, plus dist/oclif.js, the ES module oclif loads as
// its command list (package.json: oclif.commands, strategy "explicit").
//
// Why: loading @oclif/core from node_modules means resolving and compiling
// about 160 files on every start; one bundle, compiled once and then run
// from V8's code cache (src/bundle-loader.ts), starts in a fraction of that.
//
// src/lib stays outside the oclif bundle: the commands use tsc's copy in
// dist/lib, so paths relative to import.meta.url (the package root,
// templates) stay what tsc gives them. dist/oclif.js imports the lib modules
// the bundle uses and hands them to it.
import {createHash} from 'node:crypto'
import {readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {join, relative, sep} from 'node:path'
import {fileURLToPath} from 'node:url'

import {build} from 'esbuild'

const root = fileURLToPath(new URL('../', import.meta.url))
const src = join(root, 'src')
const lib = join(src, 'lib')
const commandsDir = join(src, 'commands')
const out = join(root, 'dist')

function sources(dir) {
  return readdirSync(dir, {withFileTypes: true}).flatMap((entry) => {
    const file = join(dir, entry.name)
    if (entry.isDirectory()) return sources(file)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [file] : []
  })
}

// Command ids as oclif derives them from file paths: service/install.ts is service:install, foo/index.ts is foo.
const commands = sources(commandsDir)
  .map((file) => ({file, id: relative(commandsDir, file).replace(/\.ts$/, '').split(sep).join(':').replace(/:index$/, '')}))
  .sort((a, b) => a.id.localeCompare(b.id))

const entry = [
  "export {execute} from './src/oclif.ts'",
  ...commands.map(({file}, i) => `import C${i} from './${relative(root, file).split(sep).join('/')}'`),
  `export const COMMANDS = {${commands.map(({id}, i) => `${JSON.stringify(id)}: C${i}`).join(', ')}}`,
].join('\n')

// The fast path: src/fast-path.ts with the actions and the lib modules they
// use, as one CommonJS file that bin/run.js (itself CommonJS) requires, so
// the hot commands never start Node's ES module loader. The actions' lazy
// imports stay lazy: esbuild runs each module's body only when first
// imported. npm dependencies (which, plist) stay outside, required from
// node_modules by the one command that needs each, so `service status` on
// Linux never parses launchd's plist parser. The file sits in dist/lib, so
// paths relative to the module (src/lib/pkg.ts) resolve as they do from
// tsc's output.
await build({
  absWorkingDir: root,
  entryPoints: [join(src, 'fast-path.ts')],
  outfile: join(out, 'lib', 'fast-path.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  minify: true,
  legalComments: 'none',
  define: {'import.meta.url': '__moduleUrl'},
  banner: {js: "var __moduleUrl=require('node:url').pathToFileURL(__filename).href;"},
  logLevel: 'warning',
})

// oclif sorts the commands with localeCompare on every start; the first call
// builds an ICU collator, about an eighth of Node's own start-up. For these
// command ids a plain comparison gives the same order, which the build
// checks; when it would not, oclif's sort stays as it is.
const ids = commands.map(({id}) => id)
const byCodeUnit = [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
const sameOrder = [...ids].sort((a, b) => a.localeCompare(b)).every((id, i) => id === byCodeUnit[i])
const LOCALE_SORT = '.sort((a, b) => a.id.localeCompare(b.id))'
const PLAIN_SORT = '.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))'

const libs = new Set()
const result = await build({
  absWorkingDir: root,
  stdin: {contents: entry, resolveDir: root, sourcefile: 'oclif-entry.ts', loader: 'ts'},
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  minify: true,
  legalComments: 'none',
  write: false,
  outfile: join(out, 'oclif.cjs'),
  // oclif loads typescript only to run commands from .ts sources in development.
  external: ['typescript'],
  // import() inside a vm.Script needs an experimental loader hook on Node 20: esbuild makes them require().
  supported: {'dynamic-import': false},
  plugins: [
    {
      name: 'plain-command-sort',
      setup(context) {
        context.onLoad({filter: /[\\/]@oclif[\\/]core[\\/]lib[\\/]config[\\/]plugin\.js$/}, (args) => {
          const code = readFileSync(args.path, 'utf8')
          if (!sameOrder || code.split(LOCALE_SORT).length !== 2) return undefined
          return {contents: code.replace(LOCALE_SORT, PLAIN_SORT), loader: 'js'}
        })
      },
    },
    {
      name: 'lib-from-loader',
      setup(context) {
        context.onResolve({filter: /^\.\.?\//}, (args) => {
          const target = join(args.resolveDir, args.path)
          if (!target.startsWith(lib + sep)) return undefined
          return {path: relative(lib, target).split(sep).join('/'), namespace: 'amp-lib'}
        })
        context.onLoad({filter: /.*/, namespace: 'amp-lib'}, (args) => {
          libs.add(args.path)
          return {contents: `module.exports = __ampLib(${JSON.stringify(args.path)})`, loader: 'js'}
        })
      },
    },
  ],
  logLevel: 'warning',
})

const [bundle] = result.outputFiles
const name = `oclif.${createHash('sha256').update(bundle.contents).digest('hex').slice(0, 12)}.cjs`
for (const old of readdirSync(out).filter((file) => /^oclif\..*\.cjs$/.test(file))) rmSync(join(out, old))
writeFileSync(join(out, name), bundle.contents)

const names = [...libs].sort()
writeFileSync(
  join(out, 'oclif.js'),
  [
    '// Generated by scripts/bundle.mjs: runs the oclif bundle with the dist/lib modules it uses.',
    "import {loadBundle, routeOf} from './bundle-loader.js'",
    ...names.map((file, i) => `import * as lib${i} from './lib/${file}'`),
    `const libs = {${names.map((file, i) => `${JSON.stringify(file)}: lib${i}`).join(', ')}}`,
    `const bundle = loadBundle(new URL('./${name}', import.meta.url), libs, {self: new URL(import.meta.url), route: routeOf(process.argv.slice(2))})`,
    'export const {execute, COMMANDS} = bundle',
    '',
  ].join('\n'),
)
