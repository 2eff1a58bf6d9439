/** The platform names that results report. */
export type PlatformName = 'linux' | 'macos' | 'unsupported'

/** What install, uninstall and status return; the CLI only formats it (text or `--json`). */
export interface ServiceResult {
  success: boolean
  platform: PlatformName
  message: string
  /** The lines the text output shows under the message. */
  details: string[]
}

export interface UnitStatus {
  installed: boolean
  /** The supervisor's word: active, inactive, failed, activating, not-loaded, … */
  state: string
  pid?: number
}

export interface StatusResult extends ServiceResult {
  installed: boolean
  server: UnitStatus
  watchdog: UnitStatus
  health: {url: string; healthy: boolean; reason?: string} | null
  warnings: string[]
}

/** Runs a program and collects its output; never throws for a non-zero exit or a missing program. */
export type Exec = (file: string, args: string[], options?: {env?: NodeJS.ProcessEnv}) => Promise<ExecResult>

export interface ExecResult {
  /** Exit code; 127 when the program could not be started at all. */
  code: number
  stdout: string
  stderr: string
}
