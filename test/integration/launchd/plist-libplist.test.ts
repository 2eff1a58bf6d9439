import {expect} from 'chai'

import {buildPlist, renderServerPlist, renderWatchdogPlist} from '../../../src/lib/service/drivers/launchd/plist.js'
import type {UnitSpec} from '../../../src/lib/service/types.js'
import {throughPlistutil} from '../../helpers/plistutil.js'

const spec: UnitSpec = {bin: '/usr/local/bin/amp-distro', host: '127.0.0.1', port: 8400, path: '/usr/local/bin:/usr/bin:/bin', home: '/Users/ada'}

describe('launchd plists read back by libplist (plistutil, a second, independent parser)', () => {
  it('the server and watchdog plists parse back to what was rendered', () => {
    for (const rendered of [renderServerPlist(spec), renderWatchdogPlist(spec)]) expect(throughPlistutil(buildPlist(rendered))).to.deep.equal(rendered)
  })

  it('a home and binary path holding spaces, %, $, & and < survive', () => {
    const home = '/Users/Ada Lovelace/100% $HOME & <stuff>'
    const odd = {...spec, home, bin: `${home}/bin/amp-distro`, path: `${home}/node/bin:/usr/bin`}
    for (const rendered of [renderServerPlist(odd), renderWatchdogPlist(odd)]) expect(throughPlistutil(buildPlist(rendered))).to.deep.equal(rendered)
  })
})
