import {ActionCommand} from '../../base-command.js'

/** The work: `status` in src/lib/service/status.ts, run by `runServiceCommand` (src/lib/service/run.ts). */
export default class ServiceStatus extends ActionCommand {
  static description = `Show whether the service and its watchdog are installed and running, and whether the server answers its health check.

Also shows the running server's version next to this CLI's, its uptime and, on Linux, whether lingering is on. Warns about a running server of another version (restart it), a configuration error and the line to fix, and installs that no longer match this machine (a deprecated binary, or an executable or Node that has gone). Exits 0 whenever the state could be read.`

  static enableJsonFlag = true

  static examples = [
    {command: '<%= config.bin %> <%= command.id %>', description: 'Show the service state'},
    {command: '<%= config.bin %> <%= command.id %> --json', description: 'The same as one JSON object'},
  ]

  async run(): Promise<void> {
    await this.parse(ServiceStatus)
    await this.perform({json: this.jsonEnabled()})
  }
}
