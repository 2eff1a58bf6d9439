/**
 * A failure the user can act on: its message (and any detail lines, which
 * say what to do next) is printed as is, with no stack trace, and the
 * process exits with `exit`.
 */
export class UserError extends Error {
  readonly exit: number
  readonly details: string[]

  constructor(message: string, options: {exit?: number; details?: string[]} = {}) {
    super(message)
    this.name = 'UserError'
    this.exit = options.exit ?? 1
    this.details = options.details ?? []
  }
}

/**
 * The exit code of `serve` and `watchdog` for invalid flags or configuration
 * (sysexits' EX_CONFIG): a start that can never work. The systemd units list
 * it in `RestartPreventExitStatus=`, so such a unit fails at once instead of
 * being restarted until its start limit.
 */
export const EXIT_CONFIG = 78

/**
 * Runs `parse` (flag or configuration validation) and turns the UserError
 * it throws into the same error with exit code `EXIT_CONFIG`, so that a
 * supervisor does not restart a start that can never work.
 */
export function configError<T>(parse: () => T): T {
  try {
    return parse()
  } catch (error) {
    if (error instanceof UserError) throw new UserError(error.message, {exit: EXIT_CONFIG, details: error.details})
    throw error
  }
}
