import {ActionCommand} from '../../base-command.js'

/** The work: `uninstall` in src/lib/service/uninstall.ts, run by `runServiceCommand` (src/lib/service/run.ts). */
export default class ServiceUninstall extends ActionCommand {
  static description = `Stop the service and its watchdog and remove them from the OS supervisor.

Succeeds when nothing is installed. Data in ~/.amplifier is never touched.`

  static enableJsonFlag = true

  static examples = [{command: '<%= config.bin %> <%= command.id %>', description: 'Stop and remove the service'}]

  async run(): Promise<void> {
    await this.parse(ServiceUninstall)
    await this.perform({json: this.jsonEnabled()})
  }
}
