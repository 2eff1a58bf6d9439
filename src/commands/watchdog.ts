import * as Flags from '@oclif/core/flags'

import {ActionCommand} from '../base-command.js'
import {DEFAULT_CHECK_INTERVAL_S, DEFAULT_HOST, DEFAULT_PORT, DEFAULT_RESTART_AFTER_S} from '../lib/paths.js'

export default class Watchdog extends ActionCommand {
  static description = `Keep the server healthy: check it regularly and restart it when it stays down.

Infrastructure for the service units; it runs in the foreground until SIGTERM or SIGINT. Under systemd or launchd (judged from what the supervisor gives this process: SYSTEMD_EXEC_PID equal to its PID, or XPC_SERVICE_NAME equal to LAUNCHD_JOB_NAME) it stops an unhealthy server and exits 1 so that the supervisor brings both back; standalone it starts a fresh detached server itself. Until the server first answers, failures in the first restart-after (at most 30 s) are not counted, since at boot the server may still be starting. A systemd server unit that has failed (start limit) is not retried: the watchdog logs once what to do and waits for it to be started again. Logs go to ~/.amplifier/server/watchdog.log (rotated) and to stderr unless stderr is a regular file.

Exit codes: 0 stopped by a signal; 1 a restart handed to the supervisor, the restart budget used up, or another watchdog already running for this home; 78 (EX_CONFIG) invalid flags, which no restart can fix.

A manual stop is respected: on systemd, \`systemctl --user stop amplifier-distro\` stops the watchdog too. On macOS, stop and start the server with the \`service\` commands, which handle both launchd jobs; stopping only the server job with launchctl leaves the watchdog free to start it again.`

  static hidden = true

  static parseErrorsAreConfig = true

  static examples = [
    {command: '<%= config.bin %> <%= command.id %>', description: 'Watch http://127.0.0.1:8400 with the defaults'},
    {command: '<%= config.bin %> <%= command.id %> --check-interval 10 --restart-after 60', description: 'React faster'},
  ]

  static flags = {
    host: Flags.string({default: DEFAULT_HOST, description: 'Host the server listens on.'}),
    port: Flags.string({default: String(DEFAULT_PORT), description: 'Port the server listens on (1-65535).'}),
    'check-interval': Flags.string({default: String(DEFAULT_CHECK_INTERVAL_S), description: 'Seconds between health checks.'}),
    'restart-after': Flags.string({default: String(DEFAULT_RESTART_AFTER_S), description: 'Seconds the server may stay unhealthy before it is restarted.'}),
    'max-restarts': Flags.string({default: '5', description: 'Restart attempts before the watchdog gives up (0 = unlimited).'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Watchdog)
    await this.perform(flags)
  }
}
