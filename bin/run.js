#!/usr/bin/env node
// CommonJS (see bin/package.json), loading CommonJS built by
// scripts/bundle.mjs: the fewest files and the least of Node's own module
// machinery for a start. `--version` reads only package.json; everything
// else runs from one bundle, loaded through a code cache of its own
// (src/bundle-loader.ts).
const {enableCompileCache} = require('node:module')
const {join} = require('node:path')

// Node's own compile cache (Node 22.1+; Node 20 lacks the call) for what is
// loaded outside the bundle: these entry files and the packages in node_modules.
enableCompileCache?.()

const {answerVersion} = require('../dist/version.cjs')

const root = join(__dirname, '..')
const args = process.argv.slice(2)
if (!answerVersion(args, root)) {
  const {loadBundle, routeOf} = require('../dist/bundle-loader.cjs')
  const cli = loadBundle(join(root, 'dist', 'amp-distro.cjs'), {route: routeOf(args)})
  cli.fastRun(args, root).then(async (handled) => {
    // The package root itself: oclif looks upwards from here for package.json, and bin/ has one of its own.
    if (!handled) await cli.execute({dir: root})
  })
}
