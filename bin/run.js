#!/usr/bin/env node
import module from 'node:module'

import {fastRun} from '../dist/lib/fast-path.js'

// Node 22.1+ keeps compiled code between runs; older versions lack the call.
module.enableCompileCache?.()

const root = new URL('../', import.meta.url)
if (!(await fastRun(process.argv.slice(2), root))) {
  const {execute} = await import('../dist/oclif.js')
  await execute({dir: import.meta.url})
}
