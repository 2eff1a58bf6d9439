import {expect} from 'chai'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {DEPRECATED_WARNING, staleWarnings} from '../../../src/lib/service/stale.js'

describe('stale-unit detection', () => {
  let dir: string
  let program: string

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'amp-distro-stale-'))
    program = join(dir, 'amp-distro')
    writeFileSync(program, '#!/bin/sh\n', {mode: 0o755})
  })

  afterEach(() => rmSync(dir, {recursive: true, force: true}))

  it('says nothing about a unit whose paths all exist', () => {
    expect(staleWarnings([{text: `ExecStart="${program}" "serve"`, program, nodeDir: dir}])).to.deep.equal([])
  })

  it('warns, in exactly these words, about a unit that references the deprecated server binary', () => {
    expect(DEPRECATED_WARNING).to.equal(
      "Warning: installed service references deprecated 'amp-distro-server'.\n  Run: amp-distro service uninstall && amp-distro service install",
    )
    expect(staleWarnings([{text: 'ExecStart=/usr/local/bin/amp-distro-server --port 8400'}])).to.deep.equal([DEPRECATED_WARNING])
  })

  it('gives the deprecated-binary warning once for two units', () => {
    const text = 'ExecStart=amp-distro-server'
    expect(staleWarnings([{text}, {text}])).to.deep.equal([DEPRECATED_WARNING])
  })

  it('names a missing executable and says to re-run install', () => {
    const gone = join(dir, 'gone', 'amp-distro')
    expect(staleWarnings([{text: '', program: gone, nodeDir: dir}])).to.deep.equal([
      `Warning: installed service's executable ${gone} no longer exists.\n  Re-run: amp-distro service install`,
    ])
  })

  it('names a missing Node folder (after a Node upgrade) and says to re-run install', () => {
    const gone = join(dir, 'node-v18', 'bin')
    expect(staleWarnings([{text: '', program, nodeDir: gone}])).to.deep.equal([
      `Warning: installed service's Node folder ${gone} no longer exists.\n  Re-run: amp-distro service install`,
    ])
  })

  it('leaves a bare program name to the supervisor to look up', () => {
    expect(staleWarnings([{text: 'ExecStart=amp-distro serve', program: 'amp-distro'}])).to.deep.equal([])
  })
})
