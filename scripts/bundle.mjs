// Builds, with esbuild, the CommonJS files bin/run.js loads:
//
// - dist/version.cjs answers `--version` alone, from package.json;
// - dist/bundle-loader.cjs runs the oclif bundle with a code cache of its own
//   (src/bundle-loader.ts), which help needs to start quickly; the main
//   bundle loads through Node's require() and Node's own compile cache;
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
// Why bundles: loading oclif from node_modules means resolving and reading
// about two hundred files on every start that reaches it. CommonJS, because
// importing Node's own modules as ES modules loads parts of them that a
// CommonJS require leaves alone.
//
// A bundle evaluates a module only when something first asks for it: the
// fast path at once, the actions' lazy imports only when they run.
import {createHash} from 'node:crypto'
import {mkdirSync, readdirSync, writeFileSync} from 'node:fs'
import {join, relative, sep} from 'node:path'
import {fileURLToPath} from 'node:url'

import {build} from 'esbuild'

const root = fileURLToPath(new URL('../', import.meta.url))
const commandsDir = join(root, 'src', 'commands')

function sources(dir) {
  return readdirSync(dir, {withFileTypes: true}).flatMap((entry) => {
    const file = join(dir, entry.name)
    if (entry.isDirectory()) return sources(file)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [file] : []
  })
}

// Command ids as oclif derives them from file paths: service/install.ts is service:install.
const commands = sources(commandsDir)
  .map((file) => ({file: `./${relative(root, file).split(sep).join('/')}`, id: relative(commandsDir, file).replace(/\.ts$/, '').split(sep).join(':')}))
  .sort((a, b) => (a.id < b.id ? -1 : 1))

// oclif is entered by subpath (@oclif/core/execute, /command, /flags): its
// index, with the semver check of `engines` it runs, is evaluated only by the
// `help` command, whose plugin imports it.
const oclifSide = [
  "export {execute} from '@oclif/core/execute'",
  // package.json: oclif.helpClass.
  "export {AmpDistroHelp} from './src/help.ts'",
  `export const COMMANDS = {${commands.map(({file, id}) => `get ${JSON.stringify(id)}() { return require(${JSON.stringify(file)}).default }`).join(', ')}}`,
].join('\n')

// Two bundles, so that the commands people and supervisors run often never
// read oclif: dist/amp-distro.cjs (the fast path, the actions and every lib
// module) and dist/oclif.cjs (oclif, its help plugin and the command
// classes, whose list oclif reads: package.json, oclif.commands). Each lib
// module exists once: the oclif bundle takes the ones the commands import
// from the main bundle (its `lib` export), requiring it when a command class
// first needs one. The main bundle never loads the oclif bundle: bin/run.js
// does, for help and for what the fast path leaves to oclif.
const shared = {
  absWorkingDir: root,
  outdir: join(root, 'dist'),
  outExtension: {'.js': '.cjs'},
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  minify: true,
  // import() inside a vm.Script needs an experimental loader hook: esbuild makes them require().
  supported: {'dynamic-import': false},
  // src/lib/pkg.ts finds the package root from its own module's URL.
  define: {'import.meta.url': '__moduleUrl'},
  banner: {js: "var __moduleUrl=require('node:url').pathToFileURL(__filename).href;"},
  write: false,
  logLevel: 'warning',
}

const virtual = (name, contents, loader) => ({
  name: `entry-${name}`,
  setup(context) {
    context.onResolve({filter: new RegExp(`^amp-distro:${name}$`)}, () => ({path: name, namespace: 'amp-distro'}))
    context.onLoad({filter: new RegExp(`^${name}$`), namespace: 'amp-distro'}, () => ({contents: contents(), resolveDir: root, loader}))
  },
})

const lib = join(root, 'src', 'lib')
const libUsed = new Set()
const oclif = await build({
  ...shared,
  entryPoints: [{in: 'amp-distro:oclif', out: 'oclif'}],
  // oclif loads typescript only to run commands from .ts sources in development.
  external: ['typescript', './amp-distro.cjs'],
  plugins: [
    virtual('oclif', () => oclifSide, 'ts'),
    {
      name: 'lib-from-main',
      setup(context) {
        context.onResolve({filter: /^\.\.?\//}, (args) => {
          const target = join(args.resolveDir, args.path).replace(/\.js$/, '.ts')
          if (!target.startsWith(lib + sep)) return undefined
          const name = relative(lib, target).split(sep).join('/')
          libUsed.add(name)
          return {path: name, namespace: 'amp-distro-lib'}
        })
        context.onLoad({filter: /.*/, namespace: 'amp-distro-lib'}, (args) => ({
          contents: `module.exports = require('./amp-distro.cjs').lib[${JSON.stringify(args.path)}]`,
          loader: 'js',
        }))
      },
    },
  ],
})

const entry = () =>
  [
    "exports.fastRun = require('./src/fast-path.ts').fastRun",
    `exports.lib = {${[...libUsed]
      .sort()
      .map((name) => `get ${JSON.stringify(name)}() { return require(${JSON.stringify(`./src/lib/${name}`)}) }`)
      .join(', ')}}`,
  ].join('\n')

const main = await build({
  ...shared,
  entryPoints: [
    {in: 'amp-distro:main', out: 'amp-distro'},
    {in: join(root, 'src', 'bundle-loader.ts'), out: 'bundle-loader'},
    {in: join(root, 'src', 'version.ts'), out: 'version'},
  ],
  external: ['which', 'plist'],
  plugins: [virtual('main', entry, 'js')],
})

// The oclif bundle's first line names the build by its content, for its code cache (src/bundle-loader.ts).
mkdirSync(join(root, 'dist'), {recursive: true})
for (const {path, contents} of [...main.outputFiles, ...oclif.outputFiles]) {
  const stamp = path.endsWith('oclif.cjs') ? `// build ${createHash('sha256').update(contents).digest('hex').slice(0, 16)}\n` : ''
  writeFileSync(path, Buffer.concat([Buffer.from(stamp), contents]))
}
