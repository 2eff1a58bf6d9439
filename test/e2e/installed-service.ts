import {expect} from 'chai'

import {checkHealth} from '../../src/lib/server/health.js'
import {SERVER} from './service-fixtures.js'
import {type UserManager, waitFor} from './systemd-harness.js'

/** Waits for the server unit to run and answer its health check; returns its main PID. */
export async function runningServer(manager: UserManager, port: number): Promise<number> {
  const pid = await waitFor(
    async () => {
      const {ActiveState, MainPID} = await manager.show(SERVER, ['ActiveState', 'MainPID'])
      return ActiveState === 'active' && Number(MainPID) > 0 ? Number(MainPID) : undefined
    },
    {timeoutMs: 30_000, what: `${SERVER} to run`},
  )
  await waitFor(async () => (await checkHealth(`http://127.0.0.1:${port}/api/health`, 2000)).healthy, {timeoutMs: 30_000, what: 'the installed server to answer its health check'})
  return pid
}

/** The program systemd starts for the unit (`path=` of its ExecStart property). */
export async function execStartPath(manager: UserManager): Promise<string> {
  const {ExecStart} = await manager.show(SERVER, ['ExecStart'])
  const match = /path=([^ ;]+)/.exec(ExecStart)
  expect(match, `ExecStart property: ${ExecStart}`).not.to.equal(null)
  return match![1]
}
