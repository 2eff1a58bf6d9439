import {expect} from 'chai'
import {connect, type Socket} from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'

import {checkHealth} from '../../src/lib/server/health.js'
import {SERVER_LIMITS} from '../../src/lib/server/server.js'
import {cleanup, tempHome} from '../helpers/cli.js'
import {rssBytes, type ServeProcess, startServe} from '../helpers/processes.js'

/** How long the server may take to drop a connection whose headers never complete (Node sweeps every checkIntervalMs). */
const HEADER_DEADLINE_MS = SERVER_LIMITS.headersTimeoutMs + SERVER_LIMITS.checkIntervalMs
/** Slack for a loaded machine on top of the server's own deadlines. */
const SLACK_MS = 4000

interface RawConnection {
  socket: Socket
  /** Everything the server sent so far. */
  received: () => string
  /** Resolves when the socket is fully closed: how long it lived, and whether this side hung up first. */
  closed: Promise<{afterMs: number; byClient: boolean}>
  /** This side hangs up (destroy), so `closed` then reports byClient. */
  hangUp: () => void
}

/** A raw TCP connection to the server, for requests no HTTP client would send. Errors (EPIPE, ECONNRESET) count as a close. */
function rawConnection(port: number): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    let data = ''
    let byClient = false
    const socket = connect({host: '127.0.0.1', port})
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => (data += chunk))
    socket.on('error', () => undefined)
    const closed = new Promise<{afterMs: number; byClient: boolean}>((done) => socket.once('close', () => done({afterMs: Date.now() - started, byClient})))
    socket.once('connect', () =>
      resolve({
        socket,
        received: () => data,
        closed,
        hangUp() {
          byClient = true
          socket.destroy()
        },
      }),
    )
    socket.once('error', reject)
  })
}

/** Resolves with the close, or rejects when it does not come within `ms` (the connection is then destroyed). */
async function closedWithin(connection: RawConnection, ms: number, what: string): Promise<{afterMs: number; byClient: boolean}> {
  const timer = setTimeout(() => connection.socket.destroy(new Error('deadline')), ms)
  const result = await connection.closed
  clearTimeout(timer)
  if (result.afterMs >= ms) throw new Error(`${what}: still open after ${ms} ms`)
  return result
}

/** Writes `text` one byte a second until the server closes the connection or `maxBytes` are sent. */
async function drip(connection: RawConnection, text: string, maxBytes: number): Promise<number> {
  let sent = 0
  while (sent < maxBytes && !connection.socket.destroyed && connection.socket.writable) {
    connection.socket.write(text[sent % text.length])
    sent++
    await Promise.race([sleep(1000), connection.closed])
  }

  return sent
}

/** The status line's code, or undefined when the server closed without answering. */
function statusOf(response: string): number | undefined {
  const match = /^HTTP\/1\.1 (\d{3}) /.exec(response)
  return match ? Number(match[1]) : undefined
}

const ONE_MIB_HEADER = `GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(2 ** 20)}\r\n\r\n`
const GARBAGE = '\u0000\u0001\u00ff garbage \u0007 line\r\n\r\n'
const SLOW_HEADER = `GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'s'.repeat(64)}`

describe('serve: /api/health under slow and malformed clients (real server, loopback)', function () {
  this.timeout(120_000)
  let home: string
  let server: ServeProcess
  let health: string

  before(async () => {
    home = tempHome('amp-distro-faults-')
    server = await startServe({home})
    health = `${server.url}/api/health`
  })

  afterEach(async () => {
    // Every test leaves the server healthy; a failure here names the test that broke it.
    expect(server.child.exitCode, server.output()).to.equal(null)
    expect(await checkHealth(health, 5000)).to.include({healthy: true})
  })

  after(async () => {
    await server?.stop()
    await cleanup()
  })

  it('answers other clients while several connections send their headers one byte a second, and drops those within its header timeout', async () => {
    const slow = await Promise.all(Array.from({length: 6}, () => rawConnection(server.port)))
    const dripping = slow.map((connection) => drip(connection, SLOW_HEADER, 60))
    const answers = []
    for (let i = 0; i < 10; i++) {
      answers.push(await checkHealth(health, 2000))
      await sleep(200)
    }

    expect(answers.map((answer) => answer.healthy)).to.deep.equal(Array(10).fill(true))
    const closes = await Promise.all(slow.map((connection, i) => closedWithin(connection, HEADER_DEADLINE_MS + SLACK_MS, `slow connection ${i}`)))
    const sent = await Promise.all(dripping)
    for (const [i, close] of closes.entries()) {
      expect(close.byClient, `slow connection ${i} closed by the server`).to.equal(false)
      expect(sent[i], `slow connection ${i} was still sending when dropped`).to.be.within(2, 59)
      expect(statusOf(slow[i].received()) ?? 408).to.equal(408)
    }
  })

  const badRequests: Array<[string, string, number]> = [
    ['a 1 MiB header', ONE_MIB_HEADER, 431],
    ['a garbage request line', GARBAGE, 400],
  ]
  for (const [what, request, status] of badRequests) {
    it(`answers ${what} with ${status} (or a close) at once and goes on serving`, async () => {
      const connection = await rawConnection(server.port)
      connection.socket.write(request)
      const close = await closedWithin(connection, SLACK_MS, `the connection that sent ${what}`)
      expect(close.byClient).to.equal(false)
      expect(statusOf(connection.received()) ?? status).to.equal(status)
    })
  }

  it('drops a connection that never sends a byte within its header timeout', async () => {
    const connection = await rawConnection(server.port)
    const close = await closedWithin(connection, HEADER_DEADLINE_MS + SLACK_MS, 'the silent connection')
    expect(close.byClient).to.equal(false)
  })

  it('drops an idle kept-alive connection after its keep-alive timeout', async () => {
    const connection = await rawConnection(server.port)
    connection.socket.write('GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    await sleep(500)
    expect(statusOf(connection.received())).to.equal(200)
    const close = await closedWithin(connection, SERVER_LIMITS.keepAliveTimeoutMs + SERVER_LIMITS.checkIntervalMs + SLACK_MS, 'the kept-alive connection')
    expect(close.byClient).to.equal(false)
  })

  it('does not grow in memory over hundreds of bad connections', async function () {
    if (process.platform !== 'linux') this.skip()
    const kinds: ((connection: RawConnection) => void)[] = [
      (c) => c.socket.write(ONE_MIB_HEADER),
      (c) => c.socket.write(GARBAGE),
      // A half-sent request whose client then vanishes.
      (c) => {
        c.socket.write(SLOW_HEADER)
        setTimeout(() => c.hangUp(), 50)
      },
    ]
    const round = async (count: number) => {
      for (let start = 0; start < count; start += 30) {
        const batch = await Promise.all(Array.from({length: Math.min(30, count - start)}, () => rawConnection(server.port)))
        batch.forEach((connection, i) => kinds[(start + i) % kinds.length](connection))
        await Promise.all(batch.map((connection) => closedWithin(connection, SLACK_MS * 2, 'a bad connection')))
      }
    }

    // A first round lets the heap reach its working size, so only growth after it counts.
    await round(150)
    await sleep(1000)
    const before = rssBytes(server.pid)
    await round(600)
    await sleep(1000)
    const after = rssBytes(server.pid)
    expect(after - before, `RSS ${before} -> ${after} bytes`).to.be.below(24 * 2 ** 20)
  })
})
