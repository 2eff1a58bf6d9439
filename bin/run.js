#!/usr/bin/env node
// CommonJS (see bin/package.json), loading CommonJS built by
// scripts/bundle.mjs: the fewest files and the least of Node's own module
// machinery for a start. `--version` reads only package.json; help goes to
// the oclif bundle; everything else starts in the main bundle's fast path,
// and what that does not handle goes to the oclif bundle.
const {enableCompileCache} = require('node:module')
const {join} = require('node:path')

// Node's own compile cache (Node 22.1+; Node 20 lacks the call) for all the
// rest: these entry files, both bundles and the packages in node_modules.
enableCompileCache?.()

const root = join(__dirname, '..')
const args = process.argv.slice(2)
// The package root itself: oclif looks upwards from here for package.json, and bin/ has one of its own.
const oclif = () => require('../dist/oclif.cjs').execute({dir: root})
if (args.length === 1 && args[0] === '--version') {
  require('../dist/version.cjs').answerVersion(root)
} else if (args.includes('--help') || args.includes('-h')) {
  // oclif answers help; the fast path never does.
  oclif()
} else {
  require('../dist/amp-distro.cjs')
    .fastRun(args, root)
    .then((handled) => handled || oclif())
}
