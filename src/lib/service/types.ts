/** The platform names that results report. */
export type PlatformName = 'linux' | 'macos' | 'unsupported'

/** What every service command returns; the CLI only formats it (text or `--json`). */
export interface ServiceResult {
  success: boolean
  platform: PlatformName
  message: string
  /** The lines the text output shows under the message. */
  details: string[]
  /** install, start and restart: how the wait for the new server's health ended (absent for `--wait 0` and dry runs). */
  serving?: ServingReport
  /** logs with `--json`: the lines read, oldest first. */
  lines?: LogLine[]
}

/** What install, start and restart measured while they waited for the new server to answer. */
export interface ServingReport {
  /** The health URL asked. */
  url: string
  /** True once `/api/health` answered 200 from the supervisor's main PID for the server job. */
  healthy: boolean
  /** The supervisor's main PID of the server when the wait ended (0 or absent when it had none). */
  pid?: number
  /** restart: the server's main PID before the restart. */
  previousPid?: number
  /** The version the new server reports in its health answer. */
  version?: string
  /** Milliseconds from the command's start until health answered, or until the wait gave up. */
  elapsedMs: number
  /** The `--wait` bound, in seconds. */
  waitSeconds: number
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
  /** The socket the supervisor holds for the server's port (systemd's socket unit; absent where the supervisor has none, launchd). */
  socket?: UnitStatus
  /** The server's health check; a healthy answer also carries what the server says about itself. */
  health: {url: string; healthy: boolean; reason?: string; pid?: number; version?: string; uptimeSeconds?: number} | null
  warnings: string[]
  /** This CLI's version, next to `health.version` (the running server's). */
  cliVersion: string
  /** systemd: whether lingering is on for the user (absent where `loginctl` cannot tell). */
  linger?: boolean
}

/** Runs a program and collects its output; never throws for a non-zero exit or a missing program. `timeoutMs` kills a program that runs longer. */
export type Exec = (file: string, args: string[], options?: {env?: NodeJS.ProcessEnv; timeoutMs?: number}) => Promise<ExecResult>

/**
 * Runs a program and hands each line of its stdout to `onLine` as it
 * arrives, until the program exits or `signal` fires (the program is then
 * sent SIGTERM). Resolves to its exit code and what it wrote to stderr
 * (stdout is empty: its lines went to `onLine`); never throws.
 */
export type StreamLines = (
  file: string,
  args: string[],
  options: {env?: NodeJS.ProcessEnv; signal?: AbortSignal; onLine: (line: string) => void},
) => Promise<ExecResult>

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
  /** Streams a program's output line by line (`service logs`, `journalctl --follow`). */
  stream: StreamLines
  /** This CLI's version, to compare with the running server's. */
  version: string
  /** The kernel release (`os.release()`): on Linux it tells WSL apart. */
  osRelease?: string
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
  /** The IP address `host` resolves to, where the supervisor itself listens for the server (systemd's socket). */
  address?: string
}

export interface InstallOptions {
  host: string
  port: number
  watchdog: boolean
  dryRun: boolean
  /** Seconds to wait for the new server to answer its health check; 0 returns once the supervisor accepted the request. */
  waitSeconds: number
}

/** start and restart: how long to wait for the server to answer its health check (0: do not wait). */
export interface OperateOptions {
  waitSeconds: number
}

/** One line of service output, with where it came from. */
export interface LogLine {
  /** The unit, the job or the file the line came from (for example `amplifier-distro.service` or `server.err.log`). */
  source: string
  /** The line as `service logs` prints it. */
  text: string
}

export interface LogsOptions {
  /** How many of the last lines to print first. */
  lines: number
  /** Keep printing new lines until `signal` fires. */
  follow: boolean
  /** Ends a follow (SIGINT, SIGTERM). */
  signal: AbortSignal
  /** Receives each line, oldest first, as soon as it is read. */
  write: (line: LogLine) => void
}

/** A file an install writes, with its full contents (what `--dry-run` prints). */
export interface PlannedFile {
  path: string
  content: string
}
