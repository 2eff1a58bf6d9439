import {expect} from 'chai'
import {mkdirSync, writeFileSync} from 'node:fs'
import {createServer, type Server} from 'node:net'
import {dirname} from 'node:path'

import {pathsFor} from '../../../../src/lib/paths.js'
import {streamLines} from '../../../../src/lib/exec.js'
import {createSystemdBackend} from '../../../../src/lib/service/systemd/backend.js'
import {renderServerUnit} from '../../../../src/lib/service/systemd/unit.js'
import type {Exec} from '../../../../src/lib/service/types.js'
import {cleanup, freePort, RUN_JS, tempHome} from '../../../helpers/cli.js'

/** systemctl as a fake that answers the two questions status asks: is there a manager, and the units' state. */
function fakeSystemctl(server: {ActiveState: string; SubState: string; Result: string; MainPID: number}, unitFile: string): Exec {
  return async (_file, args) => {
    if (args.includes('--property=Version')) return {code: 0, stdout: '252\n', stderr: ''}
    const block = (unit: Record<string, string | number>) =>
      Object.entries(unit)
        .map(([key, value]) => `${key}=${value}`)
        .join('\n')
    const stdout = [
      block({LoadState: 'loaded', ...server, FragmentPath: unitFile}),
      block({LoadState: 'not-found', ActiveState: 'inactive', SubState: 'dead', MainPID: 0, Result: 'success', FragmentPath: ''}),
    ].join('\n\n')
    return {code: 0, stdout: `${stdout}\n`, stderr: ''}
  }
}

async function statusWith(server: Parameters<typeof fakeSystemctl>[0], port: number) {
  const home = tempHome()
  const paths = pathsFor(home)
  mkdirSync(paths.systemdUserDir, {recursive: true})
  writeFileSync(paths.systemdServerUnit, renderServerUnit({bin: RUN_JS, host: '127.0.0.1', port, path: `${dirname(process.execPath)}:/usr/bin:/bin`, home}))
  const backend = createSystemdBackend({
    home,
    env: {},
    uid: 1000,
    user: 'someone',
    exec: fakeSystemctl(server, paths.systemdServerUnit),
    stream: streamLines,
    version: '0.3.0',
    nodePath: process.execPath,
    resolveBinary: () => ({path: RUN_JS}),
  })
  return backend.status()
}

const FAILED = {ActiveState: 'failed', SubState: 'failed', Result: 'start-limit-hit', MainPID: 0}

describe('systemd status: a port held by another program', () => {
  let holder: Server | undefined

  afterEach(async () => {
    await new Promise((resolve) => (holder ? holder.close(resolve) : resolve(undefined)))
    holder = undefined
    await cleanup()
  })

  async function holdPort(): Promise<number> {
    holder = createServer((socket) => socket.destroy())
    await new Promise<void>((resolve) => holder!.listen({host: '127.0.0.1', port: 0}, resolve))
    return (holder.address() as {port: number}).port
  }

  it('names the conflict first, with how to find the program and how to move, when the failed server’s port is taken', async () => {
    const port = await holdPort()
    const result = await statusWith(FAILED, port)
    expect(result.warnings[0]).to.equal(
      [
        `Warning: 127.0.0.1:${port} is in use by another program, so the server cannot listen there.`,
        `  See which program: ss -ltnp 'sport = :${port}'`,
        '  Stop that program, or install on another port: amp-distro service install --port <port>',
      ].join('\n'),
    )
    expect(result.warnings[1]).to.match(/^Warning: amplifier-distro\.service has failed \(start-limit-hit\)/)
    expect(result.warnings[1]).to.contain('systemctl --user reset-failed amplifier-distro')
  })

  it('says nothing about the port when the failed server’s port is free', async () => {
    const result = await statusWith(FAILED, await freePort())
    expect(result.warnings.join('\n')).not.to.contain('in use by another program')
    expect(result.warnings.join('\n')).to.contain('has failed (start-limit-hit)')
  })

  it('says nothing about the port when the server itself is running and holds it', async () => {
    const port = await holdPort()
    const result = await statusWith({ActiveState: 'active', SubState: 'running', Result: 'success', MainPID: process.pid}, port)
    expect(result.warnings).to.deep.equal([])
  })
})
