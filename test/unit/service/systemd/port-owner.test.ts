import {expect} from 'chai'

import {listeningInodes} from '../../../../src/lib/service/drivers/systemd/port-owner.js'

/** /proc/net/tcp as Linux prints it: 127.0.0.1:8400 listening (inode 1001), a connection from that port (1002), 0.0.0.0:8401 listening (1003). */
const TCP = [
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  '   0: 0100007F:20D0 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0',
  '   1: 0100007F:20D0 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 20 4 30 10 -1',
  '   2: 00000000:20D1 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1003 1 0000000000000000 100 0 0 10 0',
  '',
].join('\n')

/** /proc/net/tcp6: [::1]:8400 listening (inode 2001). */
const TCP6 = [
  '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  '   0: 00000000000000000000000001000000:20D0 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 100 0 0 10 0',
  '',
].join('\n')

describe('port owner: the listening sockets of a port in /proc/net/tcp', () => {
  it('finds the listening socket of a port, not its connections', () => {
    expect(listeningInodes(TCP, 8400)).to.deep.equal(['1001'])
    expect(listeningInodes(TCP, 8401)).to.deep.equal(['1003'])
  })

  it('reads IPv6 addresses the same way', () => {
    expect(listeningInodes(TCP6, 8400)).to.deep.equal(['2001'])
  })

  it('finds nothing for a port no one listens on, or in an empty table', () => {
    expect(listeningInodes(TCP, 9999)).to.deep.equal([])
    expect(listeningInodes('', 8400)).to.deep.equal([])
  })
})
