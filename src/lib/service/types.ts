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

/** What install, uninstall and status need from the outside world, passed in so tests can hand in fakes. */
export interface ServiceContext {
  home: string
  env: NodeJS.ProcessEnv
  uid: number
  user: string
  exec: Exec
  /** The Node running the CLI now (`process.execPath`): its folder goes first on the units' PATH. */
  nodePath: string
  /** Binary resolution (src/lib/binary.ts), called only by install. */
  resolveBinary: () => {path: string}
}

/** Everything a unit or plist is rendered from; values are validated before a spec is made. */
export interface UnitSpec {
  /** Absolute path of the `amp-distro` the units run. */
  bin: string
  host: string
  port: number
  /** The PATH the units get: the Node folder first, then the installing shell's PATH. */
  path: string
  home: string
}

export interface InstallOptions {
  host: string
  port: number
  watchdog: boolean
  dryRun: boolean
}

/** A file an install writes, with its full contents (what `--dry-run` prints). */
export interface PlannedFile {
  path: string
  content: string
}

export interface InstallPlan {
  files: PlannedFile[]
  /** The supervisor commands install runs, in order, as argument vectors. */
  commands: string[][]
}

/** One supervisor (systemd user units, launchd user agents); every backend has this shape. */
export interface Backend {
  readonly platform: Exclude<PlatformName, 'unsupported'>
  /** Pure: the files and commands an install with this spec would write and run. */
  plan(spec: UnitSpec, options: {watchdog: boolean}): InstallPlan
  install(options: InstallOptions): Promise<ServiceResult>
  uninstall(): Promise<ServiceResult>
  status(): Promise<StatusResult>
}
