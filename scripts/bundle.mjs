// Builds the oclif side of the CLI (src/oclif.ts and every command) with
// esbuild into dist/, next to what tsc compiles from src/lib and
// src/fast-path.ts.
//
// Why: loading @oclif/core from node_modules means resolving and compiling
// about 160 files on every start. One minified chunk that holds oclif, its
// dependencies and @oclif/plugin-help loads in a fraction of that. Code
// splitting keeps one copy of oclif shared by dist/oclif.js and each
// dist/commands/**.js, so oclif's usual lookup of commands through the
// manifest keeps working.
//
// src/lib stays outside the bundle: tsc compiles it once and both the fast
// path and the commands import that one copy, so module paths relative to
// import.meta.url (the package root, templates) stay what tsc gives them.
import {build} from 'esbuild'
import {mkdirSync, readdirSync, writeFileSync} from 'node:fs'
import {dirname, join, relative, sep} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = fileURLToPath(new URL('../', import.meta.url))
const src = join(root, 'src')
const lib = join(src, 'lib')
const out = join(root, 'dist')
const LIB_MARK = '@@amp-distro-lib@@/'

function sources(dir) {
  return readdirSync(dir, {withFileTypes: true}).flatMap((entry) => {
    const file = join(dir, entry.name)
    if (entry.isDirectory()) return sources(file)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [file] : []
  })
}

const result = await build({
  absWorkingDir: root,
  entryPoints: [join(src, 'oclif.ts'), ...sources(join(src, 'commands'))],
  outdir: out,
  outbase: src,
  chunkNames: 'oclif-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  legalComments: 'none',
  write: false,
  // oclif loads typescript only to run commands from .ts sources in development.
  external: ['typescript'],
  // oclif is CommonJS: its require() calls of Node built-ins need a real require.
  banner: {js: "import {createRequire as __createRequire} from 'node:module';const require=__createRequire(import.meta.url);"},
  plugins: [
    {
      name: 'keep-lib-external',
      setup(context) {
        context.onResolve({filter: /^\.\.?\//}, (args) => {
          const target = join(args.resolveDir, args.path)
          if (!target.startsWith(lib + sep)) return undefined
          return {path: LIB_MARK + relative(lib, target).split(sep).join('/'), external: true}
        })
      },
    },
  ],
  logLevel: 'warning',
})

// Each output file reaches dist/lib by its own relative path.
for (const file of result.outputFiles) {
  let toLib = relative(dirname(file.path), join(out, 'lib')).split(sep).join('/')
  if (!toLib.startsWith('.')) toLib = `./${toLib}`
  mkdirSync(dirname(file.path), {recursive: true})
  writeFileSync(file.path, file.text.replaceAll(LIB_MARK, `${toLib}/`))
}
