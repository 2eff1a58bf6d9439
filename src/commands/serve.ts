import * as Flags from '@oclif/core/flags'

import {ActionCommand} from '../base-command.js'
import {DEFAULT_HOST, DEFAULT_PORT} from '../lib/paths.js'

export default class Serve extends ActionCommand {
  static description = `Run the Amplifier distro server in the foreground.

Answers GET /api/health with JSON and holds ~/.amplifier/server/server.pid while it runs: one server per home, so a second one exits 1 with "already running" (a PID file left by a dead or unrelated process is taken over). SIGTERM or SIGINT stop it cleanly (exit 0).

Exit codes: 0 stopped by a signal; 1 a failure that may pass (the port is in use, another server runs for this home); 78 (EX_CONFIG) invalid flags or configuration, such as an unknown flag, a port outside 1-65535 or a port below 1024 without privileges, which no restart can fix.`

  static parseErrorsAreConfig = true

  static examples = [
    {command: '<%= config.bin %> <%= command.id %>', description: 'Serve on http://127.0.0.1:8400'},
    {command: '<%= config.bin %> <%= command.id %> --port 8500', description: 'Serve on another port'},
  ]

  static flags = {
    host: Flags.string({default: DEFAULT_HOST, description: 'IP address or hostname to listen on. Anything but loopback is reachable from the network.'}),
    port: Flags.string({default: String(DEFAULT_PORT), description: 'TCP port to listen on (1-65535).'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Serve)
    await this.perform(flags)
  }
}
