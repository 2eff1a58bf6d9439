#!/usr/bin/env node
// CommonJS (see bin/package.json): `--version` and the hot commands then run
// without starting Node's ES module loader, which alone costs a noticeable
// part of Node's own start-up. Only the fallback to oclif loads ES modules.
const {enableCompileCache} = require('node:module')
const {join} = require('node:path')

// Node 22.1+ keeps compiled code between runs; older versions lack the call.
enableCompileCache?.()

const {fastRun} = require('../dist/lib/fast-path.cjs')

const root = join(__dirname, '..')
fastRun(process.argv.slice(2), root).then(async (handled) => {
  if (handled) return
  const {execute} = await import('../dist/oclif.js')
  // The package root itself: oclif looks upwards from here for package.json, and bin/ has one of its own.
  await execute({dir: root})
})
