import * as Flags from '@oclif/core/flags'

import {ActionCommand} from '../../base-command.js'

/** The work: `restart` in src/lib/service/restart.ts, run by `runServiceCommand` (src/lib/service/run.ts). */
export default class ServiceRestart extends ActionCommand {
  static description = `Replace the running server with a fresh process, and restart its watchdog with it.

A stopped service is started. Returns once the new server (a new PID) answers its health check, at most --wait seconds. Run it after upgrading amp-distro: the units run the new files only once restarted.`

  static enableJsonFlag = true

  static examples = [
    {command: '<%= config.bin %> <%= command.id %>', description: 'Restart the server and wait until the new one serves'},
    {command: '<%= config.bin %> <%= command.id %> --wait 60', description: 'Allow a slow start a minute'},
  ]

  static flags = {
    wait: Flags.string({default: '30', description: 'Seconds to wait for the new server to answer its health check (0: do not wait).'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(ServiceRestart)
    await this.perform({...flags, json: this.jsonEnabled()})
  }
}
