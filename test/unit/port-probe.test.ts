import {expect} from 'chai'

import {acceptsConnections} from '../../src/lib/server/port-probe.js'
import {closeServer, holdPort} from '../helpers/cli.js'

describe('acceptsConnections', () => {
  it('is true while a listener holds the port and false once it is closed', async () => {
    const {holder, port} = await holdPort()
    expect(await acceptsConnections('127.0.0.1', port)).to.equal(true)
    await closeServer(holder)
    expect(await acceptsConnections('127.0.0.1', port)).to.equal(false)
  })

  it('is false for an address that cannot be reached', async () => {
    expect(await acceptsConnections('127.0.0.1', 1)).to.equal(false)
  })
})
