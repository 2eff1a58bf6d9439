import {expect} from 'chai'
import type {Server} from 'node:http'
import type {AddressInfo} from 'node:net'
import sinon from 'sinon'

import {createDistroServer, stopServer} from '../../src/lib/server/server.js'
import {accepts, http, rawConnection, waitFor} from '../helpers/cli.js'

describe('createDistroServer (real server on 127.0.0.1, port 0)', () => {
  let server: Server
  let base: string
  let clock: number

  beforeEach(async () => {
    clock = 1000
    server = createDistroServer({name: 'Test <server> & co', version: '9.8.7', pid: 4242, now: () => clock})
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })

  afterEach(async () => {
    if (server.listening) await stopServer(server, 0)
  })

  it('answers GET /api/health with the status, name, version, pid and whole seconds of uptime from its clock', async () => {
    clock = 6999
    const answer = await http(`${base}/api/health`)
    expect(answer.status).to.equal(200)
    expect(answer.headers['content-type']).to.equal('application/json')
    expect(answer.headers['cache-control']).to.equal('no-store')
    expect(JSON.parse(answer.body)).to.deep.equal({status: 'ok', name: 'Test <server> & co', version: '9.8.7', pid: 4242, uptimeSeconds: 5})
  })

  it('ignores a query string on the health path', async () => {
    expect((await http(`${base}/api/health?probe=1`)).status).to.equal(200)
  })

  it('answers HEAD /api/health with the headers of GET and no body', async () => {
    const get = await http(`${base}/api/health`)
    const head = await http(`${base}/api/health`, 'HEAD')
    expect(head.status).to.equal(200)
    expect(head.body).to.equal('')
    expect(head.headers['content-length']).to.equal(get.headers['content-length'])
  })

  it('refuses other methods on the health path with 405 and Allow', async () => {
    const answer = await http(`${base}/api/health`, 'POST')
    expect(answer.status).to.equal(405)
    expect(answer.headers.allow).to.equal('GET, HEAD')
    expect(JSON.parse(answer.body)).to.deep.equal({error: 'method not allowed'})
  })

  for (const path of ['/api', '/api/', '/api/other', '/api/health/extra', '/api/sessions?x=1']) {
    it(`answers ${path} with a JSON 404`, async () => {
      const answer = await http(`${base}${path}`)
      expect(answer.status).to.equal(404)
      expect(answer.headers['content-type']).to.equal('application/json')
      expect(JSON.parse(answer.body)).to.deep.equal({error: 'not found', path: path.split('?')[0]})
    })
  }

  it('answers / with an escaped HTML page: name, version, uptime, health link', async () => {
    clock = 4000
    const answer = await http(`${base}/`)
    expect(answer.status).to.equal(200)
    expect(answer.headers['content-type']).to.equal('text/html; charset=utf-8')
    expect(answer.body).to.include('<title>Test &#60;server&#62; &#38; co</title>')
    expect(answer.body).not.to.include('<server>')
    expect(answer.body).to.include('Version 9.8.7, up 3 s.')
    expect(answer.body).to.include('<a href="/api/health">/api/health</a>')
  })

  it('answers other paths with a plain 404', async () => {
    const answer = await http(`${base}/nothing-here`)
    expect(answer.status).to.equal(404)
    expect(answer.headers['content-type']).to.equal('text/plain; charset=utf-8')
  })

  describe('stopServer', () => {
    it('stops listening and closes idle keep-alive connections at once', async () => {
      const client = await rawConnection((server.address() as AddressInfo).port)
      client.socket.write('GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n')
      await waitFor('the response', () => client.received().includes('"status":"ok"'))
      const port = (server.address() as AddressInfo).port
      await stopServer(server, 60_000)
      await client.closed
      expect(await accepts(port)).to.equal(false)
    })

    it('answers a request completed during the drain, with Connection: close', async () => {
      const port = (server.address() as AddressInfo).port
      const client = await rawConnection(port)
      client.socket.write('GET /api/health HTTP/1.1\r\nHost: x\r\n')
      const stopped = stopServer(server, 60_000)
      await waitFor('the listener to close', async () => !(await accepts(port)))
      client.socket.write('\r\n')
      await stopped
      await client.closed
      expect(client.received()).to.match(/^HTTP\/1\.1 200 OK\r\n/)
      expect(client.received()).to.match(/\r\nConnection: close\r\n/i)
    })

    it('closes a connection still open when the drain time is up', async () => {
      const accepted = new Promise((resolve) => server.once('connection', resolve))
      const client = await rawConnection((server.address() as AddressInfo).port)
      client.socket.write('GET /api/health HTTP/1.1\r\n')
      await accepted
      const clock = sinon.useFakeTimers({toFake: ['setTimeout', 'clearTimeout']})
      try {
        const stopped = stopServer(server, 60_000)
        let closed = false
        void client.closed.then(() => (closed = true))
        await new Promise((resolve) => setImmediate(resolve))
        expect(closed, 'open before the drain time is up').to.equal(false)
        await clock.tickAsync(60_000)
        await stopped
        await client.closed
      } finally {
        clock.restore()
      }

      expect(client.received()).to.equal('')
    })
  })
})
