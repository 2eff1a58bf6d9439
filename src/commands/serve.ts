import {Flags} from '@oclif/core'

import {ActionCommand} from '../base-command.js'
import {DEFAULT_HOST, DEFAULT_PORT} from '../lib/paths.js'

export default class Serve extends ActionCommand {
  static description = `Run the Amplifier distro server in the foreground.

Answers GET /api/health with JSON and writes its PID to ~/.amplifier/server/server.pid while it runs. SIGTERM or SIGINT stop it cleanly (exit 0).`

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
