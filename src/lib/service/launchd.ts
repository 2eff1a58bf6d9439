import {chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync} from 'node:fs'
import {dirname, isAbsolute} from 'node:path'
import plist, {type PlistObject, type PlistValue} from 'plist'

import {UserError} from '../errors.js'
import {checkHealth} from '../health.js'
import {NAMES, pathsFor} from '../paths.js'
import {removeFile} from '../pidfile.js'
import {serverUrl} from '../serve.js'
import {parsePort, refuseControlChars, validateHost} from '../validate.js'
import {DEPRECATED_BINARY_WARNING, missingRuntimeWarnings, referencesDeprecatedBinary} from './drift.js'
import type {Backend, ExecResult, InstallOptions, InstallPlan, ServiceContext, ServiceResult, StatusResult, UnitSpec, UnitStatus} from './types.js'

const LAUNCHCTL = 'launchctl'
const PLATFORM = 'macos'

/** One launchd user agent: its label, where its plist lives and what it runs. */
export interface LaunchdJob {
  label: string
  plistPath: string
  role: 'server' | 'watchdog'
}

/** The server and watchdog jobs for a home, server first. */
export function launchdJobs(home: string): [LaunchdJob, LaunchdJob] {
  const paths = pathsFor(home)
  return [
    {label: NAMES.launchdLabel, plistPath: paths.launchdServerPlist, role: 'server'},
    {label: NAMES.launchdWatchdogLabel, plistPath: paths.launchdWatchdogPlist, role: 'watchdog'},
  ]
}

/**
 * Checks a spec before anything is rendered from it: host and port exactly
 * as `serve` validates them, an absolute binary path, and no control
 * characters in any value (a newline in a plist string is harmless to XML
 * but would reach the program's argv and its environment).
 */
export function checkSpec(spec: UnitSpec): UnitSpec {
  refuseControlChars('binary path', spec.bin)
  refuseControlChars('host', spec.host)
  refuseControlChars('PATH', spec.path)
  refuseControlChars('home directory', spec.home)
  if (!isAbsolute(spec.bin)) throw new UserError(`Invalid binary path: ${JSON.stringify(spec.bin)} is not absolute.`)
  if (!isAbsolute(spec.home)) throw new UserError(`Invalid home directory: ${JSON.stringify(spec.home)} is not absolute.`)
  return {...spec, host: validateHost(spec.host), port: parsePort(spec.port)}
}

function agentPlist(spec: UnitSpec, label: string, args: string[], keepAlive: PlistValue, logs: {out: string; err: string}): PlistObject {
  return {
    Label: label,
    ProgramArguments: [spec.bin, ...args, '--host', spec.host, '--port', String(spec.port)],
    RunAtLoad: true,
    KeepAlive: keepAlive,
    WorkingDirectory: spec.home,
    StandardOutPath: logs.out,
    StandardErrorPath: logs.err,
    // launchd does not set LAUNCHD_JOB_NAME itself; the watchdog's supervisor detection reads it.
    EnvironmentVariables: {PATH: spec.path, LAUNCHD_JOB_NAME: label},
  }
}

/**
 * The server agent: restarted by launchd when it exits with a failure (a
 * clean exit, such as a manual stop, stays stopped).
 */
export function renderServerPlist(spec: UnitSpec): PlistObject {
  const valid = checkSpec(spec)
  const paths = pathsFor(valid.home)
  return agentPlist(valid, NAMES.launchdLabel, ['serve'], {SuccessfulExit: false}, {out: paths.serverStdoutLog, err: paths.serverStderrLog})
}

/** The watchdog agent: always kept alive. */
export function renderWatchdogPlist(spec: UnitSpec): PlistObject {
  const valid = checkSpec(spec)
  const paths = pathsFor(valid.home)
  return agentPlist(valid, NAMES.launchdWatchdogLabel, ['watchdog'], true, {out: paths.watchdogStdoutLog, err: paths.watchdogStderrLog})
}

/** Serializes a plist object as XML with the `plist` package, which escapes every value. */
export function buildPlist(value: PlistObject): string {
  return `${plist.build(value)}\n`
}

/**
 * The PATH a unit gets: the folder of the Node running install first (so the
 * unit starts with the same Node, wherever it came from), then the
 * installing shell's PATH, without empty or repeated entries.
 */
export function unitPath(nodePath: string, shellPath: string | undefined): string {
  const entries = [dirname(nodePath), ...(shellPath ?? '/usr/bin:/bin:/usr/sbin:/sbin').split(':')].filter((entry) => entry.length > 0)
  return [...new Set(entries)].join(':')
}

/** What launchctl reports for one job. */
interface JobState {
  loaded: boolean
  /** launchd's word: running, not running, spawn scheduled…; `not-loaded` when launchd does not know the job. */
  state: string
  pid?: number
}

/**
 * Reads the top level of `launchctl print gui/<uid>/<label>`: one tab of
 * indentation, since nested blocks (endpoints, event triggers) carry keys of
 * the same names.
 */
export function parseLaunchctlPrint(text: string): {state: string; pid?: number} {
  const props = new Map<string, string>()
  for (const line of text.split('\n')) {
    const match = /^\t([^\t=][^=]*?) = (.*)$/.exec(line)
    if (match && !props.has(match[1])) props.set(match[1], match[2].trim())
  }

  const pid = props.get('pid')
  return {state: props.get('state') ?? 'unknown', ...(pid && /^\d+$/.test(pid) ? {pid: Number(pid)} : {})}
}

/** Reads `launchctl list <label>`, whose `"PID" = N;` line is there only while the job runs. */
export function parseLaunchctlList(text: string): {state: string; pid?: number} {
  const match = /"PID"\s*=\s*(\d+);/.exec(text)
  return match ? {state: 'running', pid: Number(match[1])} : {state: 'not running'}
}

/** True when launchctl does not know a subcommand (macOS before 10.10 has no bootstrap, bootout or print). */
function unsupported(result: ExecResult): boolean {
  return result.code === 64 || /unrecogni[sz]ed subcommand|unknown subcommand/i.test(`${result.stdout}\n${result.stderr}`)
}

function outputOf(result: ExecResult): string {
  return (result.stderr.trim() || result.stdout.trim() || `exit code ${result.code}`).split('\n')[0]
}

/**
 * Runs launchctl through the context's runner, with the current subcommands
 * (bootstrap, bootout, print) first; the first one launchctl does not know
 * switches this instance to the legacy ones (load -w, unload, list).
 */
class Launchctl {
  private legacy = false

  constructor(private readonly ctx: ServiceContext) {}

  private async run(args: string[]): Promise<ExecResult> {
    const result = await this.ctx.exec(LAUNCHCTL, args, {env: this.ctx.env})
    if (result.code === 127) throw new UserError(`launchctl could not be run: ${outputOf(result)}`, {details: ['Service management with launchd needs macOS.']})
    return result
  }

  private async current(args: string[]): Promise<ExecResult | undefined> {
    if (this.legacy) return undefined
    const result = await this.run(args)
    if (!unsupported(result)) return result
    this.legacy = true
    return undefined
  }

  private target(label: string): string {
    return `gui/${this.ctx.uid}/${label}`
  }

  async inspect(job: LaunchdJob): Promise<JobState> {
    const printed = await this.current(['print', this.target(job.label)])
    if (printed) return printed.code === 0 ? {loaded: true, ...parseLaunchctlPrint(printed.stdout)} : {loaded: false, state: 'not-loaded'}
    const listed = await this.run(['list', job.label])
    return listed.code === 0 ? {loaded: true, ...parseLaunchctlList(listed.stdout)} : {loaded: false, state: 'not-loaded'}
  }

  async unload(job: LaunchdJob): Promise<ExecResult> {
    const result = await this.current(['bootout', this.target(job.label)])
    if (result) return result
    return existsSync(job.plistPath) ? this.run(['unload', job.plistPath]) : this.run(['remove', job.label])
  }

  async load(job: LaunchdJob): Promise<ExecResult> {
    // `enable` clears a `launchctl disable` that would make bootstrap fail; `load -w` does the same.
    const enabled = await this.current(['enable', this.target(job.label)])
    if (enabled && enabled.code !== 0) return enabled
    const bootstrapped = enabled ? await this.current(['bootstrap', `gui/${this.ctx.uid}`, job.plistPath]) : undefined
    return bootstrapped ?? this.run(['load', '-w', job.plistPath])
  }
}

/** Writes a file atomically (temporary file, then rename) with mode 0644 whatever the umask. */
function writeAtomic(file: string, content: string): void {
  mkdirSync(dirname(file), {recursive: true})
  const tmp = `${file}.${process.pid}.tmp`
  try {
    writeFileSync(tmp, content, {mode: 0o644})
    chmodSync(tmp, 0o644)
    renameSync(tmp, file)
  } catch (error) {
    removeFile(tmp)
    throw error
  }
}

/** A shell-style rendering of an argument vector, for humans reading a dry run. */
function shellWords(args: string[]): string {
  return args.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", String.raw`'\''`)}'`)).join(' ')
}

function failed(message: string, details: string[] = []): ServiceResult {
  return {success: false, platform: PLATFORM, message, details}
}

/** What an installed plist says about the job, as far as status needs it. */
interface InstalledPlist {
  args: string[]
  path?: string
}

function readInstalled(file: string): InstalledPlist | undefined {
  const parsed = plist.parse(readFileSync(file, 'utf8')) as PlistObject
  const args = Array.isArray(parsed.ProgramArguments) ? parsed.ProgramArguments.filter((arg): arg is string => typeof arg === 'string') : []
  const env = parsed.EnvironmentVariables
  const path = env && typeof env === 'object' && 'PATH' in env && typeof (env as PlistObject).PATH === 'string' ? ((env as PlistObject).PATH as string) : undefined
  return {args, path}
}

function flagValue(args: string[], flag: string): string | undefined {
  const at = args.indexOf(flag)
  return at === -1 ? undefined : args[at + 1]
}

function describeUnit(name: string, job: LaunchdJob, unit: UnitStatus): string {
  const state = unit.installed ? `installed, ${unit.state}${unit.pid === undefined ? '' : ` (PID ${unit.pid})`}` : `not installed, ${unit.state}`
  return `${name} (${job.label}): ${state}`
}

/**
 * The launchd backend: per-user agents in `~/Library/LaunchAgents`, loaded
 * into the `gui/<uid>` domain. Every launchctl call goes through `ctx.exec`.
 */
export function createLaunchdBackend(ctx: ServiceContext): Backend {
  const [serverJob, watchdogJob] = launchdJobs(ctx.home)
  const paths = pathsFor(ctx.home)

  function plan(spec: UnitSpec, options: {watchdog: boolean}): InstallPlan {
    const files = [{path: serverJob.plistPath, content: buildPlist(renderServerPlist(spec))}]
    if (options.watchdog) files.push({path: watchdogJob.plistPath, content: buildPlist(renderWatchdogPlist(spec))})
    const started = options.watchdog ? [serverJob, watchdogJob] : [serverJob]
    return {
      files,
      commands: [
        // The watchdog goes first so it cannot restart a server that is being replaced.
        ...[watchdogJob, serverJob].map((job) => [LAUNCHCTL, 'bootout', `gui/${ctx.uid}/${job.label}`]),
        ...started.flatMap((job) => [
          [LAUNCHCTL, 'enable', `gui/${ctx.uid}/${job.label}`],
          [LAUNCHCTL, 'bootstrap', `gui/${ctx.uid}`, job.plistPath],
        ]),
      ],
    }
  }

  function specFor(options: InstallOptions): UnitSpec {
    const host = validateHost(options.host)
    const port = parsePort(options.port)
    const bin = ctx.resolveBinary().path
    return checkSpec({bin, host, port, path: unitPath(ctx.nodePath, ctx.env.PATH), home: ctx.home})
  }

  /**
   * Install steps:
   * 1. validate host and port, resolve the binary, render both plists (any
   *    failure here stops before anything is written or run);
   * 2. for a dry run, describe the plan and stop;
   * 3. ask launchctl which jobs are loaded (this also proves it works);
   * 4. write the plists atomically, mode 0644;
   * 5. boot out the loaded jobs, watchdog first, and drop a watchdog plist
   *    left from an earlier install when this one has none;
   * 6. enable and bootstrap the server, then the watchdog.
   */
  async function install(options: InstallOptions): Promise<ServiceResult> {
    let installPlan: InstallPlan
    let spec: UnitSpec
    try {
      spec = specFor(options)
      installPlan = plan(spec, {watchdog: options.watchdog})
    } catch (error) {
      if (error instanceof UserError) return failed(error.message, error.details)
      throw error
    }

    if (options.dryRun) {
      return {
        success: true,
        platform: PLATFORM,
        message: 'Dry run: nothing was written or run.',
        details: [
          ...installPlan.files.flatMap((file) => [`Would write ${file.path}:`, ...file.content.trimEnd().split('\n')]),
          'Would run (bootout only for jobs that are loaded):',
          ...installPlan.commands.map((command) => `  ${shellWords(command)}`),
        ],
      }
    }

    const launchctl = new Launchctl(ctx)
    try {
      const loaded = new Map<LaunchdJob, boolean>()
      for (const job of [watchdogJob, serverJob]) loaded.set(job, (await launchctl.inspect(job)).loaded)

      mkdirSync(paths.serverDir, {recursive: true})
      for (const file of installPlan.files) writeAtomic(file.path, file.content)

      for (const job of [watchdogJob, serverJob]) {
        if (!loaded.get(job)) continue
        const result = await launchctl.unload(job)
        if (result.code !== 0) return failed(`Could not stop ${job.label}: ${outputOf(result)}`)
      }

      const details: string[] = []
      if (!options.watchdog && existsSync(watchdogJob.plistPath)) {
        removeFile(watchdogJob.plistPath)
        details.push(`Removed the watchdog agent ${watchdogJob.plistPath}`)
      }

      const started = options.watchdog ? [serverJob, watchdogJob] : [serverJob]
      for (const job of started) {
        const result = await launchctl.load(job)
        if (result.code !== 0) return failed(`Could not load ${job.label}: ${outputOf(result)}`, [`Its plist is ${job.plistPath}; check it, then run ${NAMES.bin} service install again.`])
      }

      return {
        success: true,
        platform: PLATFORM,
        message: 'Service installed.',
        details: [
          ...started.map((job) => `Loaded ${job.label} from ${job.plistPath}`),
          ...details,
          `Server: ${serverUrl(spec.host, spec.port)} (logs in ${paths.serverDir})`,
        ],
      }
    } catch (error) {
      if (error instanceof UserError) return failed(error.message, error.details)
      throw error
    }
  }

  /**
   * Uninstall steps: boot out whichever jobs are loaded (watchdog first, so
   * it cannot restart the server), then remove the plists. Data under
   * `~/.amplifier` is left alone. Nothing installed is a success.
   */
  async function uninstall(): Promise<ServiceResult> {
    const launchctl = new Launchctl(ctx)
    try {
      const jobs = [watchdogJob, serverJob]
      const loaded = []
      for (const job of jobs) if ((await launchctl.inspect(job)).loaded) loaded.push(job)
      const files = jobs.filter((job) => existsSync(job.plistPath))
      if (loaded.length === 0 && files.length === 0) return {success: true, platform: PLATFORM, message: 'Service not installed; nothing to remove.', details: []}

      const details: string[] = []
      for (const job of loaded) {
        const result = await launchctl.unload(job)
        if (result.code !== 0) return failed(`Could not stop ${job.label}: ${outputOf(result)}`, [`Nothing was removed; run ${NAMES.bin} service uninstall again once launchctl can stop it.`])
        details.push(`Stopped ${job.label}`)
      }

      for (const job of files) {
        removeFile(job.plistPath)
        details.push(`Removed ${job.plistPath}`)
      }

      return {success: true, platform: PLATFORM, message: 'Service uninstalled.', details}
    } catch (error) {
      if (error instanceof UserError) return failed(error.message, error.details)
      throw error
    }
  }

  /**
   * Status steps: which plists exist, what launchctl says about each job,
   * whether the server answers on the host and port its installed plist
   * names, and drift warnings (deprecated binary, missing executable or Node).
   */
  async function status(): Promise<StatusResult> {
    const launchctl = new Launchctl(ctx)
    const units: UnitStatus[] = []
    const warnings: string[] = []
    let serverArgs: string[] | undefined
    try {
      for (const job of [serverJob, watchdogJob]) {
        const installed = existsSync(job.plistPath)
        const {state, pid} = await launchctl.inspect(job)
        units.push({installed, state, ...(pid === undefined ? {} : {pid})})
        if (!installed) continue
        let read: InstalledPlist | undefined
        try {
          read = readInstalled(job.plistPath)
        } catch (error) {
          warnings.push(`Warning: ${job.plistPath} is not a readable property list (${(error as Error).message}).\n  Run: ${NAMES.bin} service install`)
        }

        if (!read) continue
        if (job.role === 'server') serverArgs = read.args
        if (referencesDeprecatedBinary(read.args) && !warnings.includes(DEPRECATED_BINARY_WARNING)) warnings.push(DEPRECATED_BINARY_WARNING)
        for (const warning of missingRuntimeWarnings({executable: read.args[0], path: read.path})) if (!warnings.includes(warning)) warnings.push(warning)
      }
    } catch (error) {
      if (!(error instanceof UserError)) throw error
      const unknown = (job: LaunchdJob): UnitStatus => ({installed: existsSync(job.plistPath), state: 'unknown'})
      const [server, watchdog] = [unknown(serverJob), unknown(watchdogJob)]
      return {...failed(error.message, error.details), installed: server.installed || watchdog.installed, server, watchdog, health: null, warnings}
    }

    const [server, watchdog] = units
    let health: StatusResult['health'] = null
    const host = serverArgs && flagValue(serverArgs, '--host')
    const port = serverArgs && flagValue(serverArgs, '--port')
    if (host !== undefined && port !== undefined && /^\d{1,5}$/.test(port) && Number(port) <= 65_535) {
      const url = `${serverUrl(host, Number(port))}/api/health`
      const answer = await checkHealth(url)
      health = {url, healthy: answer.healthy, ...(answer.reason === undefined ? {} : {reason: answer.reason})}
    }

    const installed = server.installed || watchdog.installed
    const details = [
      describeUnit('Server', serverJob, server),
      describeUnit('Watchdog', watchdogJob, watchdog),
      ...(health ? [`Health: ${health.url} ${health.healthy ? 'answers' : `does not answer (${health.reason})`}`] : []),
    ]
    return {
      success: true,
      platform: PLATFORM,
      message: installed ? 'Service installed.' : 'Service not installed.',
      details,
      installed,
      server,
      watchdog,
      health,
      warnings,
    }
  }

  return {platform: PLATFORM, plan, install, uninstall, status}
}
