// Builds, with one esbuild run, the CommonJS files bin/run.js loads:
//
// - dist/version.cjs answers `--version` alone, from package.json;
// - dist/bundle-loader.cjs runs the bundle with a code cache (src/bundle-loader.ts);
// - dist/amp-distro.cjs, the bundle: the fast path, the actions and lib
//   modules, every command under src/commands, oclif and its help plugin.
//   npm dependencies other than oclif (which, plist, oclif's plugins) stay
//   in node_modules, required by what needs each.
//
// Why one bundle: loading oclif from node_modules means resolving and reading
// about two hundred files on every start that reaches it. CommonJS, because
// importing Node's own modules as ES modules loads parts of them that a
// CommonJS require leaves alone.
//
// The bundle evaluates a module only when something first asks for it: the
// fast path at once, oclif and the commands only through `COMMANDS` and
// `execute`, the actions' lazy imports only when they run.
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

const oclifSide = [
  "export {execute} from '@oclif/core'",
  ...commands.map(({file}, i) => `import C${i} from ${JSON.stringify(file)}`),
  `export const COMMANDS = {${commands.map(({id}, i) => `${JSON.stringify(id)}: C${i}`).join(', ')}}`,
].join('\n')

// oclif reads COMMANDS from this file (package.json: oclif.commands, strategy "explicit").
const entry = [
  "exports.fastRun = require('./src/fast-path.ts').fastRun",
  "Object.defineProperty(exports, 'COMMANDS', {enumerable: true, get: () => require('amp-distro:oclif').COMMANDS})",
  "Object.defineProperty(exports, 'execute', {enumerable: true, get: () => require('amp-distro:oclif').execute})",
].join('\n')

const result = await build({
  absWorkingDir: root,
  entryPoints: [
    {in: 'amp-distro:main', out: 'amp-distro'},
    {in: join(root, 'src', 'bundle-loader.ts'), out: 'bundle-loader'},
    {in: join(root, 'src', 'version.ts'), out: 'version'},
  ],
  outdir: join(root, 'dist'),
  outExtension: {'.js': '.cjs'},
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  minify: true,
  // oclif loads typescript only to run commands from .ts sources in development.
  external: ['typescript', 'which', 'plist'],
  // import() inside a vm.Script needs an experimental loader hook: esbuild makes them require().
  supported: {'dynamic-import': false},
  // src/lib/pkg.ts finds the package root from its own module's URL.
  define: {'import.meta.url': '__moduleUrl'},
  banner: {js: "var __moduleUrl=require('node:url').pathToFileURL(__filename).href;"},
  plugins: [
    {
      name: 'entry',
      setup(context) {
        context.onResolve({filter: /^amp-distro:/}, (args) => ({path: args.path.slice('amp-distro:'.length), namespace: 'amp-distro'}))
        context.onLoad({filter: /^main$/, namespace: 'amp-distro'}, () => ({contents: entry, resolveDir: root, loader: 'js'}))
        context.onLoad({filter: /^oclif$/, namespace: 'amp-distro'}, () => ({contents: oclifSide, resolveDir: root, loader: 'ts'}))
      },
    },
  ],
  write: false,
  logLevel: 'warning',
})

// The first line names the build by its content, for the code cache (src/bundle-loader.ts).
mkdirSync(join(root, 'dist'), {recursive: true})
for (const {path, contents} of result.outputFiles) {
  const stamp = path.endsWith('amp-distro.cjs') ? `// build ${createHash('sha256').update(contents).digest('hex').slice(0, 16)}\n` : ''
  writeFileSync(path, Buffer.concat([Buffer.from(stamp), contents]))
}
