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
import {linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {nodeBinary, pinnedNode} from './node-binary.mjs'

const TARGETS = ['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64']

const root = fileURLToPath(new URL('../', import.meta.url))
const targets = (process.argv[2] ?? TARGETS.join(',')).split(',').filter(Boolean)
const pjson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const version = pjson.oclif?.update?.node?.version

/** Runs a command in the repository root with its output on stderr, so stdout carries only the tarball paths. */
function run(file, args, env = process.env) {
  const result = spawnSync(file, args, {cwd: root, env, stdio: ['ignore', process.stderr, 'inherit']})
  if (result.status !== 0) throw new Error(`${[file, ...args].join(' ')} failed${result.error ? `: ${result.error.message}` : ''}.`)
}

/** The steps above; throws with a one-line message when one fails. */
async function main() {
  if (!version) throw new Error('package.json has no oclif.update.node.version: pin the Node version the tarballs carry there.')
  const unknown = targets.filter((target) => !TARGETS.includes(target))
  if (targets.length === 0 || unknown.length > 0) {
    throw new Error(`Unknown target ${unknown.join(', ') || '(none given)'}: use one or more of ${TARGETS.join(',')}.`)
  }
  for (const target of targets) pinnedNode(version, target)

  run('npm', ['run', 'build'])

  for (const target of targets) {
    const binary = await nodeBinary(version, target)
    // Replaced on every run, so the cache never holds a Node that was not checked against its pin.
    const cached = join(root, 'tmp', 'cache', `node-v${version}-${target}`, 'node')
    mkdirSync(join(cached, '..'), {recursive: true})
    rmSync(`${cached}.partial`, {force: true})
    linkSync(binary, `${cached}.partial`)
    renameSync(`${cached}.partial`, cached)
  }

  const staging = mkdtempSync(join(root, 'tmp', 'npm-pack-'))
  try {
    const packed = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', staging], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    if (packed.status !== 0) throw new Error('npm pack failed.')
    const [{filename}] = JSON.parse(packed.stdout)

    // Whole seconds: some filesystems keep modification times no finer than that.
    const started = Math.floor(Date.now() / 1000) * 1000
    const oclif = join(root, 'node_modules', 'oclif', 'bin', 'run.js')
    run(process.execPath, [oclif, 'pack', 'tarballs', '--targets', targets.join(','), '--no-xz', '--tarball', join(staging, filename)], {
      ...process.env,
      OCLIF_DISABLE_UPDATE_CHECK: '1',
      npm_config_prefer_offline: 'true',
    })

    return targets.map((target) => {
      const fresh = readdirSync(join(root, 'dist'))
        .filter((file) => file.endsWith(`-${target}.tar.gz`))
        .map((file) => join(root, 'dist', file))
        .find((file) => statSync(file).mtimeMs >= started)
      if (!fresh) throw new Error(`oclif reported success but wrote no tarball for ${target}.`)
      return fresh
    })
  } finally {
    rmSync(staging, {force: true, recursive: true})
  }
}

try {
  for (const tarball of await main()) console.log(tarball)
} catch (error) {
  console.error(error.message)
  process.exit(1)
}
