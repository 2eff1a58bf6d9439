import {ActionCommand} from '../../base-command.js'

/** The work: `stop` in src/lib/service/stop.ts, run by `runServiceCommand` (src/lib/service/run.ts). */
export default class ServiceStop extends ActionCommand {
  static description = `Stop the server and its watchdog through the OS supervisor.

They stay stopped until service start, service restart or service install, or the next login or boot; on systemd the socket that holds the port stops with them, so no connection starts the server again. Stop is not uninstall: the unit files or plists stay, and so does the enablement. Stopping a stopped service succeeds.`

  static enableJsonFlag = true

  static examples = [{command: '<%= config.bin %> <%= command.id %>', description: 'Stop the service until it is started again'}]

  async run(): Promise<void> {
    await this.parse(ServiceStop)
    await this.perform({json: this.jsonEnabled()})
  }
}
