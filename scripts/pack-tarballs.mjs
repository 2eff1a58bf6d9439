// Builds standalone tarballs (`oclif pack tarballs`) that carry their own Node.
//
//   npm run pack:tarballs                       every target below
//   npm run pack:tarballs -- linux-x64,darwin-arm64
//
// Steps:
// 1. Build (`npm run build`): oclif loads the CLI's commands before packing,
//    so a fresh clone needs dist/ first.
// 2. `npm pack` the built package once, without lifecycle scripts, and hand
//    that tarball to oclif, which would otherwise pack (and build) again.
// 3. Put each target's Node into oclif's cache. oclif bundles the version
//    pinned in package.json (oclif.update.node.version), and downloads it
//    from nodejs.org unless <root>/tmp/cache/node-v<version>-<platform>-<arch>/node
//    exists. That file comes from the npm registry's Node package for the
//    target, checked against the integrity pinned in scripts/node-binaries.json
//    (scripts/node-binary.mjs), so every target builds without nodejs.org and
//    none carries the packer's own Node.
// 4. Run oclif; its `npm install --production` in a scratch copy under tmp/
//    prefers npm's cache, which `npm ci` has filled.
// 5. Print the path of each target's tarball.
//
// oclif's launcher (bin/amp-distro) runs Node as a child of bash. The
// `pretarball` script in package.json, which oclif runs in its scratch copy
// after writing the launcher, makes it `exec` Node instead, so a supervisor
// that starts the launcher tracks the Node process itself.
import {spawnSync} from 'node:child_process'
import {existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {nodeBinary, pinnedNode} from './node-binary.mjs'

const TARGETS = ['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64']

const root = fileURLToPath(new URL('../', import.meta.url))
const targets = (process.argv[2] ?? TARGETS.join(',')).split(',').filter(Boolean)
const pjson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const version = pjson.oclif?.update?.node?.version

/** Runs a command in the repository root with its output on stderr, so stdout carries only the tarball paths; exits when it fails. */
function run(file, args, env = process.env) {
  const result = spawnSync(file, args, {cwd: root, env, stdio: ['ignore', process.stderr, 'inherit']})
  if (result.status !== 0) {
    console.error(`${[file, ...args].join(' ')} failed${result.error ? `: ${result.error.message}` : ''}.`)
    process.exit(result.status || 1)
  }
}

if (!version) {
  console.error('package.json has no oclif.update.node.version: pin the Node version the tarballs carry there.')
  process.exit(1)
}

const unknown = targets.filter((target) => !TARGETS.includes(target))
if (unknown.length > 0) {
  console.error(`Unknown target ${unknown.join(', ')}: use one or more of ${TARGETS.join(',')}.`)
  process.exit(1)
}

try {
  for (const target of targets) pinnedNode(version, target)
} catch (error) {
  console.error(error.message)
  process.exit(1)
}

run('npm', ['run', 'build'])

for (const target of targets) {
  const cached = join(root, 'tmp', 'cache', `node-v${version}-${target}`, 'node')
  if (existsSync(cached)) continue
  const binary = await nodeBinary(version, target)
  mkdirSync(join(cached, '..'), {recursive: true})
  // Link then rename, so an interrupted run never leaves a partial file where oclif looks.
  rmSync(`${cached}.partial`, {force: true})
  linkSync(binary, `${cached}.partial`)
  renameSync(`${cached}.partial`, cached)
}

mkdirSync(join(root, 'tmp'), {recursive: true})
const staging = mkdtempSync(join(root, 'tmp', 'npm-pack-'))
try {
  const packed = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', staging], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  if (packed.status !== 0) {
    console.error('npm pack failed.')
    process.exit(packed.status || 1)
  }

  const [{filename}] = JSON.parse(packed.stdout)
  const oclif = join(root, 'node_modules', 'oclif', 'bin', 'run.js')
  // Whole seconds: some filesystems keep modification times no finer than that.
  const started = Math.floor(Date.now() / 1000) * 1000
  run(process.execPath, [oclif, 'pack', 'tarballs', '--targets', targets.join(','), '--no-xz', '--tarball', join(staging, filename)], {
    ...process.env,
    OCLIF_DISABLE_UPDATE_CHECK: '1',
    npm_config_prefer_offline: 'true',
  })

  for (const target of targets) {
    const fresh = readdirSync(join(root, 'dist'))
      .filter((file) => file.endsWith(`-${target}.tar.gz`))
      .map((file) => join(root, 'dist', file))
      .find((file) => statSync(file).mtimeMs >= started)
    if (!fresh) {
      console.error(`oclif reported success but wrote no tarball for ${target}.`)
      process.exit(1)
    }

    console.log(fresh)
  }
} finally {
  rmSync(staging, {force: true, recursive: true})
}
