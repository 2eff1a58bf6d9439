import type {Clock} from '../../src/lib/service/drivers/launchd/launchctl.js'

/** A clock for the launchd driver's waits that only moves when slept on; a sleep yields a few turns first, so work it waits for can run. */
export function launchdFakeClock(): Clock {
  let now = 0
  return {
    now: () => now,
    async sleep(ms, signal) {
      for (let turn = 0; turn < 20; turn++) await null
      if (signal?.aborted) throw new Error('aborted')
      now += ms
    },
  }
}
