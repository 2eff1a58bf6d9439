import {expect} from 'chai'
import {Config} from '@oclif/core/config'
import {Help, loadHelpClass} from '@oclif/core/help'
import {createRequire} from 'node:module'
import {join} from 'node:path'

import {AmpDistroHelp} from '../../src/help.js'
import {ROOT} from '../helpers/pack.js'

/** What a help class prints for `argv`, collected instead of written; each run has a config of its own, as each process does (oclif's help keeps state in it). */
async function printed(HelpClass: typeof Help, argv: string[]): Promise<string> {
  const config = await Config.load(ROOT)
  const lines: string[] = []
  class Collected extends HelpClass {
    protected log(...args: string[]): void {
      lines.push(args.join(' '))
    }
  }

  await new Collected(config).showHelp(argv)
  return lines.join('\n')
}

describe('the help class (package.json: oclif.helpClass)', () => {
  let config: Config
  before(async () => {
    config = await Config.load(ROOT)
  })

  it('is the one oclif loads for this CLI: the oclif bundle’s', async () => {
    const loaded = await loadHelpClass(config)
    expect(loaded).to.equal(createRequire(import.meta.url)(join(ROOT, 'dist', 'oclif.cjs')).AmpDistroHelp)
  })

  it('prints exactly what oclif’s own help prints: the root, the service topic and every command, templates filled in', async () => {
    const invocations = [[], ['service'], ...config.commands.map((command) => command.id.split(':'))]
    expect(invocations.length).to.be.greaterThan(10)
    for (const argv of invocations) {
      const ours = await printed(AmpDistroHelp, argv)
      expect(ours, argv.join(' ') || '(root)').to.equal(await printed(Help, argv))
      expect(ours).not.to.include('<%')
    }

    expect(await printed(AmpDistroHelp, ['serve'])).to.include('$ amp-distro serve --port 8500')
  })
})
