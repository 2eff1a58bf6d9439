import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import plist, {type PlistValue} from 'plist'

function plistutil(args: string[]): void {
  const result = spawnSync('plistutil', args, {encoding: 'utf8'})
  if (result.error) throw new Error(`plistutil could not be run (Debian package libplist-utils): ${result.error.message}`)
  // plistutil exits 0 even when it cannot parse its input; it prints an error instead.
  const said = `${result.stdout}${result.stderr}`
  if (result.status !== 0 || /error/i.test(said)) throw new Error(`plistutil ${args.join(' ')}: ${said}`)
}

/**
 * Passes XML plist text through libplist (a second, independent parser):
 * XML → binary plist → XML, and parses the result with the `plist` package.
 * Throws when libplist rejects the XML.
 */
export function throughPlistutil(xml: string): PlistValue {
  const dir = mkdtempSync(join(tmpdir(), 'plistutil-'))
  try {
    const xmlFile = join(dir, 'in.plist')
    const binFile = join(dir, 'out.bplist')
    const backFile = join(dir, 'back.plist')
    writeFileSync(xmlFile, xml)
    plistutil(['-i', xmlFile, '-o', binFile, '-f', 'bin'])
    const binary = readFileSync(binFile)
    if (binary.subarray(0, 8).toString('latin1') !== 'bplist00') throw new Error('plistutil did not write a binary plist')
    plistutil(['-i', binFile, '-o', backFile, '-f', 'xml'])
    return plist.parse(readFileSync(backFile, 'utf8'))
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}
