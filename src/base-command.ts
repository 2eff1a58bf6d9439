import {Command} from '@oclif/core/command'

import {actions, type FlagValues, reportFailure} from './lib/cli/actions.js'
import {EXIT_CONFIG} from './lib/errors.js'

/** Runs the command's shared action and turns user-facing failures into a message and an exit code. */
export abstract class ActionCommand extends Command {
  /**
   * True for the commands that supervisors run (`serve`, `watchdog`): a
   * command line oclif cannot parse then exits with `EXIT_CONFIG`, like an
   * invalid flag value, so a hand-edited unit is not restarted in a loop.
   */
  static parseErrorsAreConfig = false

  protected async perform(flags: FlagValues): Promise<void> {
    if (this.id === undefined || !(this.id in actions)) throw new Error(`no action for command ${this.id}`)
    await actions[this.id](flags)
  }

  protected async catch(error: Error & {exitCode?: number; parse?: unknown; oclif?: {exit?: number}}): Promise<unknown> {
    try {
      process.exitCode = reportFailure(error)
      return undefined
    } catch {
      // An oclif error before parsing finished is about the command line: an unknown flag, a missing value, a stray argument.
      if ((this.constructor as typeof ActionCommand).parseErrorsAreConfig && !this.parsed && error.oclif !== undefined) error.oclif = {...error.oclif, exit: EXIT_CONFIG}
      // A flag error (`logs --follow --json`) is about the command line, not a result: oclif's one message, even under --json.
      if (error.parse !== undefined) throw error
      return super.catch(error)
    }
  }
}
