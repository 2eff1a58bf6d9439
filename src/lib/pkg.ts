import {readFileSync} from 'node:fs'

/** The package's root folder and its package.json fields that the tool reports. */
export const PACKAGE_ROOT = new URL('../../', import.meta.url)

let cached: {name: string; version: string} | undefined

export function packageInfo(): {name: string; version: string} {
  cached ??= JSON.parse(readFileSync(new URL('package.json', PACKAGE_ROOT), 'utf8')) as {name: string; version: string}
  return cached
}
