import type {ServerTarget} from './health-wait.js'
import type {InstalledDefinition} from './stale.js'
import type {LogsOptions, PlannedFile, PlatformName, ServiceContext, UnitSpec} from './types.js'

/** The two jobs the service is made of; a driver may run a role as several supervisor objects (a unit and its socket). */
export type Role = 'server' | 'watchdog'

/** The roles in the order they are brought up; they are taken down in the reverse order, so the watchdog cannot start a server that is being stopped. */
export const ROLES: readonly Role[] = ['server', 'watchdog']

/** What a driver needs from the outside world: the service context's home, environment, account and program runners, and the command being run (`service install`), which messages that say to run it again name. */
export type DriverContext = Pick<ServiceContext, 'home' | 'env' | 'uid' | 'user' | 'exec' | 'stream'> & {command?: string}

/** One job as its supervisor reports it. */
export interface JobState {
  /** Whether the supervisor holds the job: `unknown` when it did not answer for this job (a time-out), which is not `not-loaded`. */
  held: 'loaded' | 'not-loaded' | 'unknown'
  /** The supervisor's own word (active, inactive, failed, running, not running…), as status shows it and `--json` reports it. */
  state: string
  /** The state as status shows it next to the job's name: `active (running)`, `stopped`. */
  summary: string
  /** The state in more detail, as a diagnosis tells it: `failed (exit-code)`, `not running, last exit code 78`. */
  detail: string
  /** A process runs, or is on its way up or down: stopping it has something to do. */
  running: boolean
  /** The job's main PID, while it has one. */
  pid?: number
  /** The supervisor has given the job up and will not start it again by itself (failed, start limit, a configuration error). */
  gaveUp: boolean
  /** The job exited with EXIT_CONFIG: a command line or configuration that can never work. */
  configError: boolean
  /** The supervisor holds a definition it cannot use, in its own word (systemd's `bad-setting`). */
  unusable?: string
  /** The job runs (or failed) although its definition file is gone. */
  orphaned: boolean
  /** Why the job failed, in the supervisor's word (`exit-code`, `start-limit-hit`), when it has failed. */
  failure?: string
  /**
   * The supervisor could not start the job's program at all (launchd's own
   * exit 78: a log folder or program it cannot open), in the driver's words
   * with what to check. Such a job has `gaveUp` (a wait for it ends early)
   * but is no configuration error, and a watchdog restart, which creates
   * the log folder again, may help.
   */
  spawnFailed?: string
  /** A finding about the job that status shows as a warning, in the driver's words: the first line what, the others what to do (launchd: a job held but never started, as after Login Items turned it off). */
  warning?: string[]
  /** It failed because it was started too often in too short a time (a crash loop ended by the supervisor's start limit). */
  startLimit?: boolean
  /** The server job's listening socket, where the supervisor holds one for it (systemd's socket unit). */
  socket?: SocketState
}

/**
 * A listening socket the supervisor holds for the server: it keeps the port
 * open while the server restarts, so connections wait instead of being
 * refused, and hands it to each new server process.
 */
export interface SocketState {
  /** Its name for people: the unit. */
  name: string
  /** Its definition file. */
  file: string
  /** Its definition file is there. */
  installed: boolean
  /** Whether the supervisor holds it. */
  held: 'loaded' | 'not-loaded'
  /** The supervisor's own word (active, inactive, failed), as `--json` reports it. */
  state: string
  /** The state in more detail, as status shows it: `active (listening)`, `failed (resources)`. */
  detail: string
  /** It listens, or is on its way up or down. */
  running: boolean
  /** What it listens on now, in the supervisor's words, while it listens. */
  listen?: string
  /** Why it failed, in the supervisor's word, when it has failed: the server cannot be started until it is started again. */
  failure?: string
  /** It failed because another program held the port when it started. */
  portTaken: boolean
  /** It failed because the server hit its start limit, which closed the port. */
  startLimit: boolean
  /** The supervisor holds a definition it cannot use, in its own word. */
  unusable?: string
}

/** Both jobs as the supervisor reports them, or why the supervisor cannot be asked (the lines to show). */
export type Inspection = {jobs: Record<Role, JobState>} | {unreachable: string[]}

/** An installed definition file read back. */
export interface Definition extends InstalledDefinition {
  /** The definition's main file. */
  file: string
  /** Where the job serves (the server's `--host` and `--port`), when the file names a command. */
  target?: ServerTarget
  /** Why the file cannot be read as a definition, when it cannot. */
  problem?: string
}

/** A line of a definition file that holds a value the server refuses. */
export interface DefinitionMistake {
  /** 1-based. */
  line: number
  text: string
  /** Why the value is refused, when known. */
  reason?: string
}

/** A supervisor command a dry run shows. */
export interface PlannedCommand {
  argv: string[]
  /** When the command runs only under a condition (`when loaded`). */
  when?: string
}

/** What the driver read of the service's output. */
export interface LogsAnswer {
  /** How many lines were written. */
  count: number
  /** The result's message. */
  message: string
  details: string[]
  /** False when the logs could not be read at all. */
  readable: boolean
}

/**
 * One supervisor, asked only what a supervisor can answer: its files, its
 * jobs' state, loading, starting and stopping them, and their output. The
 * service core (install.ts, operate.ts, status.ts…) does the product's
 * work with these answers, the same way for every driver.
 *
 * Operations that change a job throw a UserError that says what happened
 * and what to do; the core turns it into a failed result.
 */
export interface Driver {
  /** The supervisor's name for people: `systemd`, `launchd`. */
  readonly name: string
  /** The platform results report. */
  readonly platform: Exclude<PlatformName, 'unsupported'>
  /** What cannot be reached when the supervisor does not answer: `systemd user manager`. */
  readonly manager: string
  /** What the definitions are called: `systemd user unit`, in the plural, and one file (`unit file`, `plist`). */
  readonly kind: {one: string; many: string; file: string}
  /** The folder the definition files go to. */
  readonly folder: string
  /** What a person does to have the supervisor read a fixed definition file, after a configuration error. */
  readonly reloadHint: string
  /** What the supervisor does with a job that exits with EXIT_CONFIG, said after "can never work". */
  readonly configErrorNote: string
  /**
   * True when the supervisor starts the server again by itself once the
   * watchdog exits (systemd: the watchdog unit `Wants=` the server); false
   * when the watchdog must ask for it with `restart(['server'])` first.
   */
  readonly watchdogExitRevivesServer: boolean
  /**
   * True when the watchdog kills a server it found down instead of asking
   * it to stop (systemd: a killed server is restarted while its socket stays
   * open; a clean exit is not restarted and closes the socket).
   */
  readonly killDownServer?: boolean

  /** Throws a UserError when this account must not `command` the service with this supervisor (launchd: root, whose agents would run in its own session). */
  admit?(command: 'install' | 'start' | 'restart'): void

  /** The job's name for people: the unit or the label. */
  jobName(role: Role): string
  /** The role's definition files, the main one first. */
  files(role: Role): string[]
  /** Pure: the files an install with this spec writes for these roles. */
  render(spec: UnitSpec, roles: readonly Role[]): PlannedFile[]
  /** Writes rendered files (atomically, mode 0644) and the folders the jobs need; throws the file system's error. */
  write(files: readonly PlannedFile[]): void
  /** Removes the role's files; answers the paths it removed. */
  remove(role: Role): string[]
  /** Reads a role's installed definition back; undefined when its file is absent. */
  read(role: Role): Definition | undefined
  /** The line of a definition that holds the value the server refuses, for a configuration error. */
  findMistake(definition: Definition): DefinitionMistake | undefined

  /** Both jobs' state in one question. */
  inspect(): Promise<Inspection>
  /** The main PID of a job right now (undefined while it has none, or when the supervisor does not answer). */
  mainPid(role: Role): Promise<number | undefined>
  /** True once the supervisor has given the job up. */
  gaveUp(role: Role): Promise<boolean>

  /** The commands `load` runs, for a dry run. */
  loadPlan(roles: readonly Role[]): PlannedCommand[]
  /** The commands `unload` runs, for a dry run. */
  unloadPlan(role: Role): PlannedCommand[]
  /**
   * Has the supervisor take the written definitions of `roles` and run
   * them, replacing jobs that run now (this is how an install upgrades).
   * Resolves to notes for the result (something that did not work but need
   * not fail the install).
   */
  load(roles: readonly Role[], jobs: Record<Role, JobState>): Promise<string[]>
  /** Stops a job and has the supervisor let go of it, before its files are removed; resolves to a line for the result. */
  unload(role: Role, job: JobState): Promise<string | undefined>
  /** Has the supervisor forget jobs whose files were removed, where it keeps something of them. */
  forget?(roles: readonly Role[]): Promise<void>
  /** Starts the installed jobs that do not run. */
  start(roles: readonly Role[], jobs: Record<Role, JobState>): Promise<void>
  /** Stops the jobs gracefully; their definitions stay. */
  stop(roles: readonly Role[], jobs: Record<Role, JobState>): Promise<void>
  /** Replaces the running jobs with fresh processes, gracefully; a job that does not run is started. */
  restart(roles: readonly Role[], jobs: Record<Role, JobState>): Promise<void>

  /** The last lines of a job's output, oldest first; empty when there are none or they cannot be read. */
  logTail(role: Role, lines: number): Promise<string[]>
  /** Writes both jobs' output through `options.write`, oldest first, and follows it when asked. */
  logs(options: LogsOptions): Promise<LogsAnswer>
  /** The command that names the program listening on a TCP port. */
  portOwnerCommand(port: number): string
  /** The program listening on a TCP port (`name (PID n)`), where the driver can tell. */
  portOwner?(port: number): string | undefined
  /** How a person brings a job back from its start limit with the supervisor's own tool, where that takes more than `service start`. */
  readonly startLimitRecovery?: string
  /**
   * The IP address the supervisor listens on for `host`, for a driver whose
   * supervisor holds the server's socket (it takes no host names); throws a
   * UserError for a host that does not resolve.
   */
  listenAddress?(host: string): Promise<string>
  /** What else status tells about the supervisor, where it has more to tell (systemd: lingering). */
  statusNotes?(): Promise<{details: string[]; linger?: boolean}>
}

/** A driver module: how to tell that the supervisor started this process, and how to make the driver. */
export interface DriverModule {
  /** True when this very process was started by the supervisor as one of our jobs. */
  startedBy(env: NodeJS.ProcessEnv, pid: number): boolean
  createDriver(ctx: DriverContext): Driver
}
