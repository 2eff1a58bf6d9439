import {expect} from 'chai'
import {spawn} from 'node:child_process'
import {closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {EXIT_CONFIG} from '../../src/lib/errors.js'
import {MAX_OUTPUT_BYTES} from '../../src/lib/process/output-bound.js'

import {
  accepts,
  cleanup,
  envFor,
  exitOf,
  freePort,
  hasStackTrace,
  http,
  PACKAGE,
  rawConnection,
  RUN_JS,
  runCli,
  serverPidFile,
  start,
  tempHome,
  track,
  waitFor,
} from '../helpers/cli.js'
import {startServe} from '../helpers/processes.js'

describe('amp-distro serve: a running server (built CLI, real process)', function () {
  this.timeout(60_000)

  let home: string
  let port: number
  let server: Awaited<ReturnType<typeof startServe>>

  before(async () => {
    home = tempHome()
    port = await freePort()
    server = await startServe({home, port})
  })

  after(cleanup)

  it('prints where it listens and its PID, without a network warning on loopback', () => {
    expect(server.stdout()).to.include(`listening on http://127.0.0.1:${port} (PID ${server.child.pid})`)
    expect(server.stderr()).to.equal('')
  })

  it('answers GET /api/health with 200 JSON: status, version, pid, uptimeSeconds', async () => {
    const answer = await http(`http://127.0.0.1:${port}/api/health`)
    expect(answer.status).to.equal(200)
    expect(answer.headers['content-type']).to.equal('application/json')
    const body = JSON.parse(answer.body)
    expect(body).to.include({status: 'ok', version: PACKAGE.version, pid: server.child.pid})
    expect(body.uptimeSeconds).to.be.a('number').and.at.least(0)
    expect(Number.isInteger(body.uptimeSeconds)).to.equal(true)
  })

  it('answers HEAD /api/health with 200, JSON headers and no body', async () => {
    const answer = await http(`http://127.0.0.1:${port}/api/health`, 'HEAD')
    expect(answer.status).to.equal(200)
    expect(answer.headers['content-type']).to.equal('application/json')
    expect(answer.body).to.equal('')
  })

  it('answers other /api/ paths with a JSON 404', async () => {
    const answer = await http(`http://127.0.0.1:${port}/api/other`)
    expect(answer.status).to.equal(404)
    expect(answer.headers['content-type']).to.equal('application/json')
    expect(JSON.parse(answer.body)).to.deep.equal({error: 'not found', path: '/api/other'})
  })

  it('answers / with an HTML page naming the server, version, uptime and the health link', async () => {
    const answer = await http(`http://127.0.0.1:${port}/`)
    expect(answer.status).to.equal(200)
    expect(answer.headers['content-type']).to.equal('text/html; charset=utf-8')
    expect(answer.body).to.match(/^<!doctype html>/)
    expect(answer.body).to.include('Amplifier distro server')
    expect(answer.body).to.include(`Version ${PACKAGE.version}`)
    expect(answer.body).to.match(/up \d+ s/)
    expect(answer.body).to.include('href="/api/health"')
  })

  it('holds its PID in ~/.amplifier/server/server.pid', () => {
    expect(readFileSync(serverPidFile(home), 'utf8')).to.equal(`${server.child.pid}\n`)
  })
})

describe('amp-distro serve: start and stop (built CLI, real processes)', function () {
  this.timeout(60_000)

  afterEach(cleanup)

  it('claims the PID file, holding its PID from the first moment it exists, then listens', async () => {
    const home = tempHome()
    const port = await freePort()
    const run = start(RUN_JS, ['serve', '--port', String(port)], {env: envFor(home)})
    const text = await waitFor('the PID file', () => existsSync(serverPidFile(home)) && readFileSync(serverPidFile(home), 'utf8'), 15_000, 5)
    expect(text).to.equal(`${run.child.pid}\n`)
    await waitFor('serve to say it listens', () => run.stdout().includes('listening on'))
    expect((await http(`http://127.0.0.1:${port}/api/health`)).status).to.equal(200)
  })

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`stops on ${signal}: exit 0, PID file removed, port released`, async () => {
      const home = tempHome()
      const port = await freePort()
      const run = await startServe({home, port})
      run.child.kill(signal)
      const done = await run.finished()
      expect(done.code, done.stderr).to.equal(0)
      expect(done.signal).to.equal(null)
      expect(done.stdout).to.include('Amplifier distro server stopped.')
      expect(done.stderr).to.equal('')
      expect(existsSync(serverPidFile(home))).to.equal(false)
      expect(await accepts(port)).to.equal(false)
    })
  }

  it('lets a request in flight at SIGTERM finish, then closes its connection', async () => {
    const home = tempHome()
    const port = await freePort()
    const run = await startServe({home, port})
    const client = await rawConnection(port)
    client.socket.write('GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n')
    run.child.kill('SIGTERM')
    await waitFor('the listener to close', async () => !(await accepts(port)))
    expect(run.child.exitCode).to.equal(null)
    client.socket.write('\r\n')
    await client.closed
    const [head, body] = client.received().split('\r\n\r\n')
    expect(head).to.match(/^HTTP\/1\.1 200 OK/)
    expect(head).to.match(/^Connection: close$/im)
    expect(JSON.parse(body)).to.include({status: 'ok', pid: run.child.pid})
    const done = await run.finished()
    expect(done.code).to.equal(0)
    expect(existsSync(serverPidFile(home))).to.equal(false)
  })

  it('closes a connection that never completes its request within a few seconds, and absorbs a second SIGTERM', async () => {
    const home = tempHome()
    const port = await freePort()
    const run = await startServe({home, port})
    const client = await rawConnection(port)
    client.socket.write('GET /api/health HTTP/1.1\r\n')
    run.child.kill('SIGTERM')
    await waitFor('the listener to close', async () => !(await accepts(port)))
    expect(run.child.exitCode).to.equal(null)
    run.child.kill('SIGTERM')
    const done = await run.finished()
    await client.closed
    expect(done.signal).to.equal(null)
    expect(done.code).to.equal(0)
    expect(client.received()).to.equal('')
    expect(existsSync(serverPidFile(home))).to.equal(false)
  })

  it('refuses a port in use with one line naming host and port, leaving the holder and its PID file alone', async () => {
    const firstHome = tempHome()
    const port = await freePort()
    const first = await startServe({home: firstHome, port})
    const pidFile = serverPidFile(firstHome)
    const before = statSync(pidFile).mtimeMs

    const secondHome = tempHome()
    const second = await runCli(['serve', '--port', String(port)], {env: envFor(secondHome)})
    expect(second.code).to.equal(1)
    expect(second.stdout).to.equal('')
    expect(second.stderr).to.equal(`Error: Cannot listen on 127.0.0.1:${port}: address already in use (another process holds the port).\n`)
    expect(existsSync(serverPidFile(secondHome)), 'the PID file claimed before listening is released').to.equal(false)

    expect(readFileSync(pidFile, 'utf8')).to.equal(`${first.child.pid}\n`)
    expect(statSync(pidFile).mtimeMs).to.equal(before)
    expect(first.child.exitCode).to.equal(null)
    expect(JSON.parse((await http(`http://127.0.0.1:${port}/api/health`)).body).pid).to.equal(first.child.pid)
  })

  it('refuses a second serve for the same home while the first runs, on any port', async () => {
    const home = tempHome()
    const firstPort = await freePort()
    const first = await startServe({home, port: firstPort})
    const pidFile = serverPidFile(home)
    const before = statSync(pidFile).mtimeMs

    const secondPort = await freePort()
    const second = await runCli(['serve', '--port', String(secondPort)], {env: envFor(home)})
    expect(second.code).to.equal(1)
    expect(second.stderr).to.equal(
      `Error: amp-distro serve is already running (PID ${first.child.pid}) for this home; its PID file is ${pidFile}.\n` +
        '  Stop that one first (amp-distro service stop, or end that process), or use another HOME.\n',
    )
    expect(await accepts(secondPort)).to.equal(false)
    expect(readFileSync(pidFile, 'utf8')).to.equal(`${first.child.pid}\n`)
    expect(statSync(pidFile).mtimeMs).to.equal(before)
  })

  it('lets exactly one of two serves started at the same instant for one home run, on different ports, in every one of 20 rounds', async () => {
    for (let round = 1; round <= 20; round++) {
      const home = tempHome()
      const ports = [await freePort(), await freePort()]
      const pair = ports.map((port) => start(RUN_JS, ['serve', '--port', String(port)], {env: envFor(home)}))
      const exited = () => pair.filter((run) => run.child.exitCode !== null || run.child.signalCode !== null)
      await waitFor(`round ${round}: each serve to listen or exit`, () => pair.every((run) => exited().includes(run) || run.stdout().includes('listening on')))
      expect(exited(), `round ${round}: ${pair.map((run) => run.stdout() + run.stderr()).join(' / ')}`).to.have.length(1)
      const [loser] = exited()
      const winner = pair.find((run) => run !== loser)!
      expect(loser.child.exitCode).to.equal(1)
      expect(loser.stderr()).to.include(`Error: amp-distro serve is already running (PID ${winner.child.pid})`)
      expect(await accepts(ports[pair.indexOf(loser)])).to.equal(false)
      expect(readFileSync(serverPidFile(home), 'utf8'), `round ${round}`).to.equal(`${winner.child.pid}\n`)
      winner.child.kill('SIGTERM')
      expect((await winner.finished()).code).to.equal(0)
      expect(existsSync(serverPidFile(home))).to.equal(false)
    }
  })

  it('with regular files as stdout and stderr: empties one over 5 MiB at start and writes on at its new end', async () => {
    const home = tempHome()
    const out = join(home, 'server.out.log')
    writeFileSync(out, 'x'.repeat(MAX_OUTPUT_BYTES + 1024))
    const fd = openSync(out, 'a')
    const port = await freePort()
    const child = track(spawn(process.execPath, [RUN_JS, 'serve', '--port', String(port)], {env: envFor(home), stdio: ['ignore', fd, fd]}))
    closeSync(fd)
    await waitFor('serve to say it listens', () => readFileSync(out, 'utf8').includes('listening on'), 20_000)
    const lines = readFileSync(out, 'utf8').split('\n')
    expect(lines[0]).to.match(/^--- \S+ amp-distro emptied this file: it had grown past 5242880 bytes ---$/)
    expect(lines[1]).to.include(`listening on http://127.0.0.1:${port} (PID ${child.pid})`)
    expect(statSync(out).size).to.be.below(1024)
    child.kill('SIGTERM')
    expect((await exitOf(child)).code).to.equal(0)
  })

  describe('refuses a command line oclif cannot parse with exit 78 (EX_CONFIG), so a supervisor does not restart it', () => {
    for (const [what, args, message] of [
      ['an unknown flag', ['--bogus'], /Nonexistent flag: --bogus/],
      ['a flag without its value', ['--port'], /Flag --port expects a value/],
      ['a stray argument after a flag', ['--port', '8400', 'extra'], /Unexpected argument: extra/],
    ] as const) {
      it(what, async () => {
        const home = tempHome()
        const done = await runCli(['serve', ...args], {env: envFor(home)})
        expect(done.code).to.equal(EXIT_CONFIG)
        expect(done.stderr).to.match(message)
        expect(hasStackTrace(done.stderr)).to.equal(false)
        expect(existsSync(join(home, '.amplifier'))).to.equal(false)
      })
    }

    it('while other commands keep oclif’s exit code 2', async () => {
      const done = await runCli(['service', 'status', '--bogus'], {env: envFor(tempHome())})
      expect(done.code).to.equal(2)
    })
  })

  it('exits 1, not 78, for a port in use: another program may let go of it', async () => {
    const holder = await startServe({home: tempHome()})
    const done = await runCli(['serve', '--port', String(holder.port)], {env: envFor(tempHome())})
    expect(done.code).to.equal(1)
    expect(done.stderr).to.include('address already in use')
  })

  describe('replaces a stale PID file', () => {
    async function deadPid(): Promise<number> {
      const child = track(spawn('true'))
      await exitOf(child)
      return child.pid!
    }

    const stale: Array<[string, () => Promise<string>]> = [
      ['naming a dead process', async () => `${await deadPid()}\n`],
      ['holding garbage', async () => 'not a pid\n'],
      ['that is empty', async () => ''],
      [
        'naming an unrelated live process (sleep)',
        async () => {
          const sleeper = track(spawn('sleep', ['60'], {stdio: 'ignore'}))
          return `${sleeper.pid}\n`
        },
      ],
    ]

    for (const [what, content] of stale) {
      it(what, async () => {
        const home = tempHome()
        const pidFile = serverPidFile(home)
        mkdirSync(join(home, '.amplifier', 'server'), {recursive: true})
        writeFileSync(pidFile, await content())
        const port = await freePort()
        const run = await startServe({home, port})
        expect(readFileSync(pidFile, 'utf8')).to.equal(`${run.child.pid}\n`)
        run.child.kill('SIGTERM')
        expect((await run.finished()).code).to.equal(0)
        expect(existsSync(pidFile)).to.equal(false)
      })
    }
  })

  describe('refuses bad input with exit 78 (EX_CONFIG) before binding or writing anything', () => {
    const cases: Array<[string, string[], RegExp]> = [
      ['port 0', ['--port', '0'], /^Error: Invalid port: "0"\. Use a whole number from 1 to 65535\.\n$/],
      ['port 65536', ['--port', '65536'], /^Error: Invalid port: "65536"\./],
      ['port -1', ['--port', '-1'], /^Error: Invalid port: "-1"\./],
      ['port 1.5', ['--port', '1.5'], /^Error: Invalid port: "1\.5"\./],
      ['port abc', ['--port', 'abc'], /^Error: Invalid port: "abc"\./],
      ['an empty port', ['--port', ''], /^Error: Invalid port: ""\./],
      ['a host with a newline', ['--host', 'a\nb'], /^Error: Invalid host: "a\\nb" contains a control character\.\n$/],
      ['a host with a tab', ['--host', 'a\tb'], /^Error: Invalid host: "a\\tb" contains a control character\./],
      ['host bad_host!', ['--host', 'bad_host!'], /^Error: Invalid host: "bad_host!"\. Use an IP address \(such as 127\.0\.0\.1\) or a hostname\.\n$/],
      ['a host with spaces', ['--host', 'my host'], /^Error: Invalid host: "my host"\./],
      ['a host of spaces', ['--host', '   '], /^Error: Invalid host: " {3}"\./],
      ['an empty host', ['--host', ''], /^Error: Invalid host: ""\./],
    ]

    for (const [what, args, message] of cases) {
      it(what, async () => {
        const home = tempHome()
        const port = await freePort()
        const portArgs = args[0] === '--port' ? [] : ['--port', String(port)]
        const done = await runCli(['serve', ...portArgs, ...args], {env: envFor(home)})
        expect(done.code).to.equal(EXIT_CONFIG)
        expect(done.stdout).to.equal('')
        expect(done.stderr).to.match(message)
        expect(done.stderr.trimEnd().split('\n')).to.have.length(1)
        expect(hasStackTrace(done.stderr)).to.equal(false)
        expect(existsSync(join(home, '.amplifier'))).to.equal(false)
        if (portArgs.length > 0) expect(await accepts(port)).to.equal(false)
      })
    }
  })

  it('warns that 0.0.0.0 is reachable from the network', async () => {
    const home = tempHome()
    const port = await freePort()
    const run = await startServe({home, port, args: ['--host', '0.0.0.0']})
    await waitFor('the warning', () => run.stderr().includes('\n'))
    expect(run.stderr()).to.equal('Warning: 0.0.0.0 is reachable from the network, not only from this machine. Use --host 127.0.0.1 to keep it local.\n')
    expect(run.stdout()).to.include(`listening on http://0.0.0.0:${port}`)
    expect((await http(`http://127.0.0.1:${port}/api/health`)).status).to.equal(200)
  })

  it('listens on a hostname (localhost) without a network warning', async () => {
    const home = tempHome()
    const port = await freePort()
    const run = await startServe({home, port, args: ['--host', 'localhost']})
    expect(run.stdout()).to.include(`listening on http://localhost:${port}`)
    expect((await http(`http://localhost:${port}/api/health`)).status).to.equal(200)
    run.child.kill('SIGINT')
    const done = await run.finished()
    expect(done.code).to.equal(0)
    expect(done.stderr).to.equal('')
  })

  it('reports a PID file it cannot write clearly, and releases the port', async () => {
    const home = tempHome()
    writeFileSync(join(home, '.amplifier'), 'a file where a folder should be\n')
    const port = await freePort()
    const done = await runCli(['serve', '--port', String(port)], {env: envFor(home)})
    expect(done.code).to.equal(1)
    expect(done.stderr).to.match(new RegExp(`^Error: Cannot write the PID file ${join(home, '.amplifier', 'server', 'server.pid')}: ENOTDIR`))
    expect(hasStackTrace(done.stderr)).to.equal(false)
    expect(await accepts(port)).to.equal(false)
  })
})
