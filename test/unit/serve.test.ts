import {expect} from 'chai'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {join} from 'node:path'

import {EXIT_CONFIG, UserError} from '../../src/lib/errors.js'
import type {Io} from '../../src/lib/cli/io.js'
import {forgetListenEnv, inheritedListener, serve} from '../../src/lib/server/serve.js'
import {cleanup, freePort, http, serverPidFile, tempHome, waitFor} from '../helpers/cli.js'

function recorder(): Io & {out: string[]; err: string[]} {
  const out: string[] = []
  const err: string[] = []
  return {out, err, log: (line) => out.push(line), warn: (line) => err.push(line)}
}

describe('serve (in process, real server on a free port)', () => {
  afterEach(cleanup)

  it('claims its PID file, listens, and on abort stops and removes the PID file', async () => {
    const home = tempHome()
    const port = await freePort()
    const io = recorder()
    const stop = new AbortController()
    const running = serve({host: '127.0.0.1', port: String(port)}, {home, io, version: '1.2.3', pid: 31337, signal: stop.signal})
    await waitFor('the listening line', () => io.out.length > 0)
    expect(io.out).to.deep.equal([`Amplifier distro server 1.2.3 listening on http://127.0.0.1:${port} (PID 31337)`])
    expect(io.err).to.deep.equal([])
    expect(readFileSync(serverPidFile(home), 'utf8')).to.equal('31337\n')
    expect(JSON.parse((await http(`http://127.0.0.1:${port}/api/health`)).body)).to.include({version: '1.2.3', pid: 31337})
    stop.abort()
    await running
    expect(io.out[1]).to.equal('Amplifier distro server stopped.')
    expect(existsSync(serverPidFile(home))).to.equal(false)
  })

  it("leaves a PID file that a successor wrote while it ran", async () => {
    const home = tempHome()
    const io = recorder()
    const stop = new AbortController()
    const running = serve({host: '127.0.0.1', port: String(await freePort())}, {home, io, version: '1', pid: 31337, signal: stop.signal})
    await waitFor('the listening line', () => io.out.length > 0)
    writeFileSync(serverPidFile(home), '4242\n')
    stop.abort()
    await running
    expect(readFileSync(serverPidFile(home), 'utf8')).to.equal('4242\n')
  })

  it('warns when the host is reachable from the network', async () => {
    const io = recorder()
    const stop = new AbortController()
    const running = serve({host: '0.0.0.0', port: String(await freePort())}, {home: tempHome(), io, version: '1', pid: 31337, signal: stop.signal})
    await waitFor('the listening line', () => io.out.length > 0)
    stop.abort()
    await running
    expect(io.err).to.deep.equal(['Warning: 0.0.0.0 is reachable from the network, not only from this machine. Use --host 127.0.0.1 to keep it local.'])
  })

  it('refuses a port in use with a UserError (exit 1) naming host and port, releasing the PID file it claimed', async () => {
    const holder = createServer()
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve))
    const {port} = holder.address() as {port: number}
    const home = tempHome()
    try {
      const error = await serve({host: '127.0.0.1', port: String(port)}, {home, io: recorder(), version: '1', pid: 31337, signal: new AbortController().signal}).then(
        () => undefined,
        (error_: unknown) => error_,
      )
      expect(error).to.be.instanceOf(UserError)
      expect((error as UserError).message).to.equal(`Cannot listen on 127.0.0.1:${port}: address already in use (another process holds the port).`)
      expect((error as UserError).exit).to.equal(1)
      expect(existsSync(serverPidFile(home))).to.equal(false)
    } finally {
      holder.close()
    }
  })

  it('refuses bad flags as configuration errors (exit 78) before touching the home directory', async () => {
    const home = tempHome()
    for (const flags of [{host: '127.0.0.1', port: '0'}, {host: 'bad_host!', port: '8400'}]) {
      const error = await serve(flags, {home, io: recorder(), version: '1', pid: 31337, signal: new AbortController().signal}).then(
        () => undefined,
        (error_: unknown) => error_,
      )
      expect(error).to.be.instanceOf(UserError)
      expect((error as UserError).exit).to.equal(EXIT_CONFIG)
    }

    expect(existsSync(join(home, '.amplifier'))).to.equal(false)
  })
})

describe('serve: a listening socket from systemd (socket activation)', () => {
  const cases: Array<[string, NodeJS.ProcessEnv, number | undefined]> = [
    ['LISTEN_PID is this process and LISTEN_FDS is 1', {LISTEN_PID: '4242', LISTEN_FDS: '1'}, 3],
    ['several sockets: the first one', {LISTEN_PID: '4242', LISTEN_FDS: '2', LISTEN_FDNAMES: 'a:b'}, 3],
    ['LISTEN_PID names another process (a parent left it behind)', {LISTEN_PID: '4241', LISTEN_FDS: '1'}, undefined],
    ['LISTEN_FDS 0', {LISTEN_PID: '4242', LISTEN_FDS: '0'}, undefined],
    ['LISTEN_FDS not a number', {LISTEN_PID: '4242', LISTEN_FDS: 'x1'}, undefined],
    ['LISTEN_FDS missing', {LISTEN_PID: '4242'}, undefined],
    ['nothing set', {}, undefined],
  ]
  for (const [what, env, fd] of cases) {
    it(`${what}: ${fd === undefined ? 'binds itself' : `takes fd ${fd}`}`, () => {
      expect(inheritedListener(env, 4242)).to.equal(fd)
    })
  }

  it('forgets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, and nothing else', () => {
    const env: NodeJS.ProcessEnv = {LISTEN_PID: '1', LISTEN_FDS: '1', LISTEN_FDNAMES: 'x', HOME: '/home/ada'}
    forgetListenEnv(env)
    expect(env).to.deep.equal({HOME: '/home/ada'})
  })

  afterEach(cleanup)

  it('without a socket for it, binds host and port itself and still removes the variables from its environment', async () => {
    const home = tempHome()
    const port = await freePort()
    const io = recorder()
    const stop = new AbortController()
    const env: NodeJS.ProcessEnv = {LISTEN_PID: '1', LISTEN_FDS: '1', LISTEN_FDNAMES: 'x'}
    const running = serve({host: '127.0.0.1', port: String(port)}, {home, io, version: '1.2.3', pid: 31337, signal: stop.signal, env})
    await waitFor('the listening line', () => io.out.length > 0)
    expect(io.out[0]).to.equal(`Amplifier distro server 1.2.3 listening on http://127.0.0.1:${port} (PID 31337)`)
    expect(env).to.deep.equal({})
    stop.abort()
    await running
  })
})
