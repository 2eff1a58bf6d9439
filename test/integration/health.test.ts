import {expect} from 'chai'
import {createServer, type Server, type Socket} from 'node:net'

import {checkHealth} from '../../src/lib/server/health.js'

describe('checkHealth against a listener that accepts and never answers (loopback)', () => {
  let server: Server
  const sockets: Socket[] = []
  let url: string

  before(async () => {
    server = createServer((socket) => sockets.push(socket))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as {port: number}).port}/api/health`
  })

  after(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  })

  it('a stop (the abort signal) ends the question at once, long before its time-out', async function () {
    this.timeout(30_000)
    const stop = new AbortController()
    const asking = checkHealth(url, 600_000, stop.signal)
    await new Promise((resolve) => setTimeout(resolve, 100))
    stop.abort()
    expect(await asking).to.deep.equal({healthy: false, reason: 'ABORT_ERR'})
  })

  it('without a stop, the time-out ends it', async function () {
    this.timeout(30_000)
    expect(await checkHealth(url, 200)).to.deep.equal({healthy: false, reason: 'timeout'})
  })
})
