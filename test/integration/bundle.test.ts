import {expect} from 'chai'
import {readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {requireBuild, ROOT} from '../helpers/pack.js'

describe('the oclif bundle (dist/oclif.<hash>.cjs)', () => {
  before(requireBuild)

  it("sorts the commands without an ICU collator only where that keeps oclif's order", () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, unknown>}
    const ids = Object.keys(manifest.commands)
    expect(ids).to.include.members(['help', 'serve', 'service:status'])
    const byLocale = [...ids].sort((a, b) => a.localeCompare(b))
    const byCodeUnit = [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    const bundle = readdirSync(join(ROOT, 'dist')).find((file) => /^oclif\.[0-9a-f]{12}\.cjs$/.test(file))!
    const code = readFileSync(join(ROOT, 'dist', bundle), 'utf8')
    expect(code.includes('localeCompare')).to.equal(JSON.stringify(byLocale) !== JSON.stringify(byCodeUnit))
  })
})
