#!/usr/bin/env node
import {fastRun} from '../dist/fast-path.js'

const root = new URL('../', import.meta.url)
if (!(await fastRun(process.argv.slice(2), root))) {
  const {execute} = await import('@oclif/core')
  await execute({dir: import.meta.url})
}
