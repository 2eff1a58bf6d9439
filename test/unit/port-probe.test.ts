import {expect} from 'chai'
import {createServer, type Server} from 'node:net'

import {acceptsConnections} from '../../src/lib/port-probe.js'

function listen(): Promise<{server: Server; port: number}> {
  return new Promise((resolve) => {
    const server = createServer((socket) => socket.destroy())
    server.listen({host: '127.0.0.1', port: 0}, () => resolve({server, port: (server.address() as {port: number}).port}))
  })
}

describe('acceptsConnections', () => {
  it('is true while a listener holds the port and false once it is closed', async () => {
    const {server, port} = await listen()
    expect(await acceptsConnections('127.0.0.1', port)).to.equal(true)
    await new Promise((resolve) => server.close(resolve))
    expect(await acceptsConnections('127.0.0.1', port)).to.equal(false)
  })

  it('is false for an address that cannot be reached', async () => {
    expect(await acceptsConnections('127.0.0.1', 1)).to.equal(false)
  })
})
