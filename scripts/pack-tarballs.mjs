// Builds standalone tarballs (`oclif pack tarballs`) that carry their own Node.
//
//   npm run pack:tarballs                       linux-x64 (the default target)
//   npm run pack:tarballs -- linux-x64,darwin-arm64
//
// oclif takes the Node version from package.json (oclif.update.node.version)
// or, when unset as here, from the Node that runs it, and downloads that
// version's binary for each target from nodejs.org unless
// <root>/tmp/cache/node-v<version>-<platform>-<arch>/node already exists.
// This script runs oclif with the Node that runs it and fills that cache for
// its own platform from process.execPath, so the target matching this
// machine builds offline. Other targets need nodejs.org (a connected
// machine) or a binary of the same version placed in the cache by hand.
//
// oclif's launcher (bin/amp-distro) runs Node as a child of bash. The
// `pretarball` script in package.json, which oclif runs in its scratch copy
// after writing the launcher, makes it `exec` Node instead, so a supervisor
// that starts the launcher tracks the Node process itself.
import {spawnSync} from 'node:child_process'
import {chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = fileURLToPath(new URL('../', import.meta.url))
const targets = (process.argv[2] ?? 'linux-x64').split(',').filter(Boolean)
const pjson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const version = process.versions.node

const pinned = pjson.oclif?.update?.node?.version
if (pinned && pinned !== version) {
  console.error(`package.json pins Node ${pinned} for the tarballs, but this is Node ${version}: run this script with Node ${pinned}.`)
  process.exit(1)
}

const local = `${process.platform}-${process.arch}`
if (targets.includes(local)) {
  const cached = join(root, 'tmp', 'cache', `node-v${version}-${process.platform}-${process.arch}`, 'node')
  if (!existsSync(cached) || statSync(cached).size !== statSync(process.execPath).size) {
    mkdirSync(join(cached, '..'), {recursive: true})
    // Copy then rename, so an interrupted copy never passes for a cached binary.
    copyFileSync(process.execPath, `${cached}.partial`)
    chmodSync(`${cached}.partial`, 0o755)
    renameSync(`${cached}.partial`, cached)
  }
}

for (const target of targets.filter((target) => target !== local)) {
  const [platform, arch] = target.split('-')
  if (!existsSync(join(root, 'tmp', 'cache', `node-v${version}-${platform}-${arch}`))) {
    console.warn(`${target}: oclif will download Node ${version} for it from nodejs.org.`)
  }
}

const oclif = join(root, 'node_modules', 'oclif', 'bin', 'run.js')
const run = spawnSync(process.execPath, [oclif, 'pack', 'tarballs', '--targets', targets.join(','), '--no-xz'], {
  cwd: root,
  stdio: 'inherit',
  env: {...process.env, OCLIF_DISABLE_UPDATE_CHECK: '1'},
})
if (run.status !== 0) process.exit(run.status ?? 1)

// The newest tarball for each target: what this run built.
for (const target of targets) {
  const [newest] = readdirSync(join(root, 'dist'))
    .filter((file) => file.endsWith(`-${target}.tar.gz`))
    .map((file) => join(root, 'dist', file))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)
  if (newest) console.log(newest)
}
