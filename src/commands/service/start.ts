import * as Flags from '@oclif/core/flags'

import {ActionCommand} from '../../base-command.js'

/** The work: `start` in src/lib/service/start.ts, run by `runServiceCommand` (src/lib/service/run.ts). */
export default class ServiceStart extends ActionCommand {
  static description = `Start the installed server, and its watchdog, through the OS supervisor.

Returns once the new server answers its health check (at most --wait seconds). The service stays enabled as it was: it also starts at the next login or boot.`

  static enableJsonFlag = true

  static examples = [
    {command: '<%= config.bin %> <%= command.id %>', description: 'Start the service and wait until it serves'},
    {command: '<%= config.bin %> <%= command.id %> --wait 0', description: 'Return as soon as the supervisor has accepted the request'},
  ]

  static flags = {
    wait: Flags.string({default: '30', description: 'Seconds to wait for the server to answer its health check (0: do not wait).'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(ServiceStart)
    await this.perform({...flags, json: this.jsonEnabled()})
  }
}
