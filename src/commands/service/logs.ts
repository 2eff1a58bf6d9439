import * as Flags from '@oclif/core/flags'

import {ActionCommand} from '../../base-command.js'

/** The work: `logs` in src/lib/service/logs.ts, run by `runServiceCommand` (src/lib/service/run.ts). */
export default class ServiceLogs extends ActionCommand {
  static description = `Print the output of the server and the watchdog, oldest first.

On Linux from the systemd journal; on macOS from the log files under ~/.amplifier/server, each line marked with its file. With --follow, new lines are printed as they come until Ctrl-C (exit 0).`

  static enableJsonFlag = true

  static examples = [
    {command: '<%= config.bin %> <%= command.id %>', description: 'The last 50 lines'},
    {command: '<%= config.bin %> <%= command.id %> -n 200 --follow', description: 'The last 200 lines, then new ones as they come'},
  ]

  static flags = {
    lines: Flags.string({char: 'n', default: '50', description: 'How many of the last lines to print.'}),
    follow: Flags.boolean({char: 'f', default: false, exclusive: ['json'], description: 'Keep printing new lines until interrupted.'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(ServiceLogs)
    await this.perform({...flags, json: this.jsonEnabled()})
  }
}
