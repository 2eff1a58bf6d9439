#!/usr/bin/env -S node --import tsx
import {execute} from '@oclif/core'
import {readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

// From source, oclif finds the commands by file name under src/commands; the
// build lists them in dist/oclif.js instead (package.json: oclif.commands).
const pjson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
pjson.oclif.commands = './src/commands'
await execute({development: true, loadOptions: {root: fileURLToPath(new URL("../", import.meta.url)), pjson, ignoreManifest: true}})
