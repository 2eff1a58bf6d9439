#!/usr/bin/env -S node --import tsx
const {execute} = require('@oclif/core')
const {readFileSync} = require('node:fs')
const {join} = require('node:path')

// From source, oclif finds the commands by file name under src/commands; the
// build lists them in its bundle instead (package.json: oclif.commands).
const root = join(__dirname, '..')
const pjson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
pjson.oclif.commands = './src/commands'
execute({development: true, loadOptions: {root, pjson, ignoreManifest: true}})
