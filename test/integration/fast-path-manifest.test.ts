import {expect} from 'chai'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {unhandledProperties} from '../../src/fast-path.js'
import {actions} from '../../src/lib/cli/actions.js'
import {requireBuild, ROOT} from '../helpers/pack.js'

describe('the fast path against the built oclif.manifest.json', () => {
  let manifest: {commands: Record<string, {flags: Record<string, object>}>}
  before(() => {
    requireBuild()
    manifest = JSON.parse(readFileSync(join(ROOT, 'oclif.manifest.json'), 'utf8')) as typeof manifest
  })

  it('finds every command it runs (the keys of actions) in the manifest', () => {
    expect(Object.keys(actions).filter((id) => !(id in manifest.commands))).to.deep.equal([])
  })

  it('handles every property of every flag of those commands, so none is left to oclif by accident', () => {
    const unhandled = Object.keys(actions).flatMap((id) =>
      Object.entries(manifest.commands[id]?.flags ?? {}).flatMap(([name, flag]) => unhandledProperties(flag).map((property) => `${id} --${name}: ${property}`)),
    )
    expect(unhandled).to.deep.equal([])
  })
})
