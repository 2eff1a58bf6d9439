// Builds, with esbuild, the CommonJS files bin/run.js loads:
//
// - dist/version.cjs answers `--version` alone, from package.json;
// - dist/amp-distro.cjs, the main bundle: the fast path, the actions and
//   every lib module; what `serve`, `watchdog` and the `service` commands run;
// - dist/oclif.cjs: oclif, its help plugin and every command under
//   src/commands, for help, flag errors and the plugins' commands. It takes
//   the lib modules the commands import from the main bundle, so each exists
//   once. bin/run.js loads it first for help, and otherwise only when the
//   fast path leaves the command to oclif. A command class is evaluated only
//   when oclif asks for it: help reads the manifest and evaluates none.
//   npm dependencies other than oclif (which, plist, oclif's plugins) stay
//   in node_modules, required by what needs each.
//
// Both bundles load through require(), under Node's compile cache
// (bin/run.js). Why bundles: loading oclif from node_modules means resolving
// and reading about two hundred files on every start that reaches it.
// CommonJS, because importing Node's own modules as ES modules loads parts
// of them that a CommonJS require leaves alone.
//
// A bundle evaluates a module only when something first asks for it: the
// fast path at once, the actions' lazy imports only when they run.
import {readdirSync} from 'node:fs'
import {join, relative, sep} from 'node:path'
import {fileURLToPath} from 'node:url'

import {build} from 'esbuild'

const root = fileURLToPath(new URL('../', import.meta.url))
const lib = join(root, 'src', 'lib')
const commandsDir = join(root, 'src', 'commands')

/** The TypeScript sources under `dir`, as paths relative to it with `/` between folders, sorted. */
function sources(dir) {
  return readdirSync(dir, {recursive: true})
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .map((file) => file.split(sep).join('/'))
    .sort()
}

const shared = {
  absWorkingDir: root,
  outdir: join(root, 'dist'),
  outExtension: {'.js': '.cjs'},
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  minify: true,
  // src/lib/pkg.ts finds the package root from its own module's URL.
  define: {'import.meta.url': '__moduleUrl'},
  banner: {js: "var __moduleUrl=require('node:url').pathToFileURL(__filename).href;"},
  logLevel: 'warning',
}

/** An entry point whose source is `contents`, resolved from the package root. */
const generated = (name, contents) => ({
  name: `entry-${name}`,
  setup(context) {
    context.onResolve({filter: new RegExp(`^amp-distro:${name}$`)}, () => ({path: name, namespace: 'amp-distro'}))
    context.onLoad({filter: /.*/, namespace: 'amp-distro'}, () => ({contents, resolveDir: root, loader: 'ts'}))
  },
})

// The main bundle's entry is generated: besides the fast path it exports
// every lib module (the files under src/lib, read from the folder) for the
// oclif bundle, each evaluated only when first asked for.
await build({
  ...shared,
  entryPoints: [
    {in: 'amp-distro:main', out: 'amp-distro'},
    {in: join(root, 'src', 'version.ts'), out: 'version'},
  ],
  external: ['which', 'plist'],
  plugins: [
    generated('main', [
      "export {fastRun} from './src/fast-path.ts'",
      `export const lib = {${sources(lib).map((file) => `get ${JSON.stringify(file)}() { return require(${JSON.stringify(`./src/lib/${file}`)}) }`).join(', ')}}`,
    ].join('\n')),
  ],
})

// The oclif bundle's entry is generated too: oclif's explicit command
// strategy (package.json: oclif.commands) reads a map of command id to
// class, here built from the files under src/commands (service/install.ts is
// service:install, as oclif derives ids from paths), each class evaluated
// only when oclif asks for it. oclif is entered by subpath
// (@oclif/core/execute, /command, /flags): its index, with the semver check
// of `engines` it runs, is evaluated only by the `help` command, whose
// plugin imports it.
const commands = sources(commandsDir).map((file) => [file.replace(/\.ts$/, '').split('/').join(':'), `./src/commands/${file}`])
await build({
  ...shared,
  entryPoints: [{in: 'amp-distro:oclif', out: 'oclif'}],
  // oclif loads typescript only to run commands from .ts sources in development.
  external: ['typescript', './amp-distro.cjs'],
  plugins: [
    generated('oclif', [
      "export {execute} from '@oclif/core/execute'",
      // package.json: oclif.helpClass.
      "export {AmpDistroHelp} from './src/help.ts'",
      `export const COMMANDS = {${commands.map(([id, file]) => `get ${JSON.stringify(id)}() { return require(${JSON.stringify(file)}).default }`).join(', ')}}`,
    ].join('\n')),
    {
      // A lib module the command classes import is the main bundle's (its `lib` export), not a second copy.
      name: 'lib-from-main',
      setup(context) {
        context.onResolve({filter: /^\.\.?\//}, (args) => {
          const target = join(args.resolveDir, args.path).replace(/\.js$/, '.ts')
          if (!target.startsWith(lib + sep)) return undefined
          return {path: relative(lib, target).split(sep).join('/'), namespace: 'amp-distro-lib'}
        })
        context.onLoad({filter: /.*/, namespace: 'amp-distro-lib'}, (args) => ({
          contents: `module.exports = require('./amp-distro.cjs').lib[${JSON.stringify(args.path)}]`,
          loader: 'js',
        }))
      },
    },
  ],
})
