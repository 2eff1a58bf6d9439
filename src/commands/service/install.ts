import * as Flags from '@oclif/core/flags'

import {ActionCommand} from '../../base-command.js'
import {DEFAULT_HOST, DEFAULT_PORT} from '../../lib/paths.js'

/** The work: `install` in src/lib/service/install.ts, run by `runServiceCommand` (src/lib/service/run.ts). */
export default class ServiceInstall extends ActionCommand {
  static description = `Register the server with the OS supervisor so it starts at login (and at boot where possible) and recovers from failures.

On Linux: systemd user units in ~/.config/systemd/user, with a socket unit that holds the port, so connections wait instead of being refused while the server restarts. On macOS: launchd user agents in ~/Library/LaunchAgents. By default a health watchdog is installed alongside the server. Returns once the server answers its health check (at most --wait seconds). Re-running install updates the units and restarts what is running (this is how to upgrade).`

  static enableJsonFlag = true

  static examples = [
    {command: '<%= config.bin %> <%= command.id %>', description: 'Install the server and its watchdog on http://127.0.0.1:8400'},
    {command: '<%= config.bin %> <%= command.id %> --port 8500 --no-watchdog', description: 'Install the server alone, on another port'},
    {command: '<%= config.bin %> <%= command.id %> --dry-run', description: 'Show the files and commands an install would write and run'},
  ]

  static flags = {
    host: Flags.string({default: DEFAULT_HOST, description: 'IP address or hostname the service listens on.'}),
    port: Flags.string({default: String(DEFAULT_PORT), description: 'TCP port the service listens on (1-65535).'}),
    watchdog: Flags.boolean({default: true, allowNo: true, description: 'Also install the health watchdog, which restarts an unresponsive server.'}),
    'dry-run': Flags.boolean({default: false, description: 'Print the files and commands instead of writing and running them.'}),
    wait: Flags.string({default: '30', description: 'Seconds to wait for the server to answer its health check (0: return once the supervisor has accepted it).'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(ServiceInstall)
    await this.perform({...flags, json: this.jsonEnabled()})
  }
}
