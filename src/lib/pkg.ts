import {existsSync, readFileSync} from 'node:fs'

/**
 * The package's root folder: the nearest folder at or above this module's
 * that holds a package.json (src/lib/.. in a checkout, dist/.. once built).
 */
function packageRoot(moduleUrl: string): URL {
  let dir = new URL('./', moduleUrl)
  while (!existsSync(new URL('package.json', dir))) {
    const parent = new URL('../', dir)
    if (parent.href === dir.href) throw new Error(`no package.json above ${moduleUrl}`)
    dir = parent
  }

  return dir
}

let cached: {name: string; version: string} | undefined

/** The package.json fields that the tool reports. */
export function packageInfo(): {name: string; version: string} {
  cached ??= JSON.parse(readFileSync(new URL('package.json', packageRoot(import.meta.url)), 'utf8')) as {name: string; version: string}
  return cached
}
