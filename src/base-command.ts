import {Command} from '@oclif/core'

import {actions, type FlagValues, reportFailure} from './lib/actions.js'

/** Runs the command's shared action and turns user-facing failures into a message and an exit code. */
export abstract class ActionCommand extends Command {
  protected async perform(flags: FlagValues): Promise<void> {
    if (this.id === undefined || !(this.id in actions)) throw new Error(`no action for command ${this.id}`)
    await actions[this.id](flags)
  }

  protected async catch(error: Error & {exitCode?: number; parse?: unknown}): Promise<unknown> {
    try {
      process.exitCode = reportFailure(error)
      return undefined
    } catch {
      // A flag error (`logs --follow --json`) is about the command line, not a result: oclif's one message, exit 2, even under --json.
      if (error.parse !== undefined) throw error
      return super.catch(error)
    }
  }
}
