import {expect} from 'chai'
import {execFile} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {REPO} from '../helpers/cli.js'

const run = promisify(execFile)

/** The package as npm would publish it: what `files` lets through. */
const SHIPPED = [/^bin\/(run\.js|package\.json)$/, /^dist\/.+\.c?js$/, /^templates\/[^/]+$/, /^oclif\.manifest\.json$/, /^README\.md$/, /^LICENSE$/, /^package\.json$/]

function commandsBlock(text: string): string {
  const match = /^<!-- commands -->$[\s\S]*?^<!-- commandsstop -->$/m.exec(text)
  expect(match, 'a <!-- commands --> … <!-- commandsstop --> block').not.to.equal(null)
  return match![0]
}

describe('the npm package', function () {
  this.timeout(60_000)

  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'))

  it('is amp-distro 0.3.0, an ES module, for Node 20.19+ and 22.12+ (which load ES modules through require)', () => {
    expect(pkg).to.include({name: 'amp-distro', version: '0.3.0', type: 'module'})
    expect(pkg.engines).to.deep.equal({node: '^20.19.0 || >=22.12.0'})
  })

  it('has exactly one binary, amp-distro, and oclif reads the bundled commands, help included, and two plugins', () => {
    expect(pkg.bin).to.deep.equal({'amp-distro': './bin/run.js'})
    expect(pkg.oclif).to.include({bin: 'amp-distro', topicSeparator: ' '})
    expect(pkg.oclif.commands).to.deep.equal({strategy: 'explicit', target: './dist/oclif.cjs', identifier: 'COMMANDS'})
    expect(pkg.oclif.plugins).to.deep.equal(['@oclif/plugin-not-found', '@oclif/plugin-autocomplete'])
    const manifest = JSON.parse(readFileSync(join(REPO, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, {pluginName: string}>}
    expect(manifest.commands.help?.pluginName).to.equal('amp-distro')
  })

  it('has the build, lint, test and readme scripts', () => {
    expect(pkg.scripts).to.include.keys('build', 'lint', 'test', 'readme')
  })

  it('ships only what runs: bin/run.js and its package.json, dist, templates, the manifest, README, LICENSE and package.json', async () => {
    const {stdout} = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {cwd: REPO})
    const files = (JSON.parse(stdout) as Array<{files: Array<{path: string}>}>)[0].files.map((file) => file.path)
    expect(files.filter((file) => !SHIPPED.some((pattern) => pattern.test(file)))).to.deep.equal([])
    expect(files).to.include.members(['bin/run.js', 'bin/package.json', 'dist/amp-distro.cjs', 'dist/oclif.cjs', 'dist/version.cjs', 'oclif.manifest.json', 'README.md', 'LICENSE', 'package.json'])
  })

  it("keeps the README's command reference in step with the commands (npm run readme)", async () => {
    const oclif = join(REPO, 'node_modules', 'oclif', 'bin', 'run.js')
    const {stdout} = await run(process.execPath, [oclif, 'readme', '--dry-run', '--no-source-links', '--no-aliases'], {cwd: REPO, maxBuffer: 4 * 1024 * 1024})
    expect(commandsBlock(readFileSync(join(REPO, 'README.md'), 'utf8'))).to.equal(commandsBlock(stdout))
  })
})
