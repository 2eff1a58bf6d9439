import {readFileSync} from 'node:fs'
import {arch, release} from 'node:os'
import {join} from 'node:path'

/** oclif's user agent, as `--version` prints it. */
export function versionLine(name: string, version: string): string {
  const platform = process.platform === 'linux' && release().toLowerCase().includes('microsoft') ? 'wsl' : process.platform
  return `${name}/${version} ${platform}-${arch()} node-${process.version}`
}

/**
 * Answers `amp-distro --version`, as oclif does, for the package in `root`,
 * before anything else of the CLI loads (bin/run.js): it is the command run
 * most often and needs nothing but package.json.
 */
export function answerVersion(root: string): void {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {name: string; version: string}
  process.stdout.write(`${versionLine(pkg.name, pkg.version)}\n`)
}
