import {expect} from 'chai'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {jobState, socketState} from '../../../../src/lib/service/drivers/systemd/driver.js'

describe('systemd driver: a unit’s `systemctl show` answer in the driver’s terms', () => {
  let dir: string
  let file: string

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'amp-distro-job-state-'))
    file = join(dir, 'amplifier-distro.socket')
    writeFileSync(file, '[Socket]\nListenStream=127.0.0.1:8400\n')
  })

  after(() => rmSync(dir, {recursive: true, force: true}))

  it('a listening socket: installed, loaded, running, with what it listens on', () => {
    const shown = {LoadState: 'loaded', ActiveState: 'active', SubState: 'listening', Result: 'success', Listen: '127.0.0.1:8400 (Stream)'}
    expect(socketState(shown, file)).to.deep.equal({
      name: 'amplifier-distro.socket',
      file,
      installed: true,
      held: 'loaded',
      state: 'active',
      detail: 'active (listening)',
      running: true,
      listen: '127.0.0.1:8400 (Stream)',
      portTaken: false,
      startLimit: false,
    })
  })

  it('a socket that failed for its port (Result=resources) took no port; one the server’s start limit took down says so', () => {
    const taken = socketState({LoadState: 'loaded', ActiveState: 'failed', Result: 'resources'}, file)
    expect(taken).to.include({state: 'failed', detail: 'failed (resources)', failure: 'resources', portTaken: true, startLimit: false, running: false})
    const limit = socketState({LoadState: 'loaded', ActiveState: 'failed', Result: 'service-start-limit-hit'}, file)
    expect(limit).to.include({failure: 'service-start-limit-hit', portTaken: false, startLimit: true})
  })

  it('no socket file and a unit systemd never loaded (an install from before the socket): not installed, not held', () => {
    expect(socketState({LoadState: 'not-found', ActiveState: 'inactive'}, join(dir, 'absent.socket'))).to.deep.include({installed: false, held: 'not-loaded', running: false})
  })

  it('a socket file systemd cannot use is reported in its word', () => {
    expect(socketState({LoadState: 'bad-setting', ActiveState: 'inactive'}, file)).to.include({unusable: 'bad-setting'})
  })

  it('a server unit at its start limit has given up, for that reason', () => {
    expect(jobState({LoadState: 'loaded', ActiveState: 'failed', Result: 'start-limit-hit'}, join(dir, 'absent.service'))).to.include({gaveUp: true, startLimit: true, failure: 'start-limit-hit'})
    expect(jobState({LoadState: 'loaded', ActiveState: 'failed', Result: 'exit-code'}, join(dir, 'absent.service'))).to.include({gaveUp: true, startLimit: false})
  })
})
