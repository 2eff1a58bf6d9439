import {existsSync, mkdirSync, readFileSync} from 'node:fs'
import {basename, isAbsolute} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import plist, {type PlistObject, type PlistValue} from 'plist'

import {UserError} from '../errors.js'
import {DEFAULT_HOST, DEFAULT_PORT, NAMES, pathsFor, serverUrl} from '../paths.js'
import {commandText, removeFile, writeFilesAtomically} from '../files.js'
import {parsePort, refuseControlChars, validateHost} from '../validate.js'
import {makeUnitSpec} from './spec.js'
import {type InstalledDefinition, staleWarnings} from './stale.js'
import type {Backend, ExecResult, InstallOptions, InstallPlan, ServiceContext, ServiceResult, StatusResult, UnitSpec, UnitStatus} from './types.js'

const LAUNCHCTL = 'launchctl'
const PLATFORM = 'macos'

/** One launchd user agent: its label and where its plist lives. */
export interface LaunchdJob {
  label: string
  plistPath: string
}

/** The server and watchdog jobs for a home, server first. */
export function launchdJobs(home: string): [LaunchdJob, LaunchdJob] {
  const paths = pathsFor(home)
  return [
    {label: NAMES.launchdLabel, plistPath: paths.launchdServerPlist},
    {label: NAMES.launchdWatchdogLabel, plistPath: paths.launchdWatchdogPlist},
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

  /**
   * Boots a job out and waits until launchd has let go of it: launchd tears
   * a job down after bootout returns, and a bootstrap of the same label
   * before that ends fails with `5: Input/output error`.
   */
  async unload(job: LaunchdJob, timeoutMs = 10_000): Promise<ExecResult> {
    const result = (await this.current(['bootout', this.target(job.label)])) ?? (existsSync(job.plistPath) ? await this.run(['unload', job.plistPath]) : await this.run(['remove', job.label]))
    if (result.code !== 0) return result
    const deadline = Date.now() + timeoutMs
    for (let delay = 50; (await this.inspect(job)).loaded; delay = Math.min(delay * 2, 500)) {
      if (Date.now() >= deadline) return {code: 1, stdout: '', stderr: `launchd still holds ${job.label} ${timeoutMs / 1000} s after it was told to stop it`}
      await sleep(delay)
    }

    return result
  }

  async load(job: LaunchdJob): Promise<ExecResult> {
    // `enable` clears a `launchctl disable` that would make bootstrap fail; `load -w` does the same.
    const enabled = await this.current(['enable', this.target(job.label)])
    if (enabled && enabled.code !== 0) return enabled
    const bootstrapped = enabled ? await this.current(['bootstrap', `gui/${this.ctx.uid}`, job.plistPath]) : undefined
    return bootstrapped ?? this.run(['load', '-w', job.plistPath])
  }
}

function failed(message: string, details: string[] = []): ServiceResult {
  return {success: false, platform: PLATFORM, message, details}
}

/** An installed plist as status reads it: the raw text (for drift checks) and what it runs. */
interface InstalledPlist extends InstalledDefinition {
  args: string[]
  /** Why the text is not a readable plist, when it is not. */
  problem?: string
}

function stringsOf(value: PlistValue | undefined): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []
}

/** Reads an installed plist; undefined when there is none. */
function readInstalled(file: string): InstalledPlist | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return undefined
  }

  let parsed: PlistValue
  try {
    parsed = plist.parse(text)
  } catch (error) {
    return {text, args: [], problem: (error as Error).message.split('\n')[0]}
  }

  const dict = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as PlistObject) : {}
  const args = stringsOf(dict.ProgramArguments)
  const env = dict.EnvironmentVariables as PlistObject | undefined
  const path = env !== null && typeof env === 'object' && typeof env.PATH === 'string' ? env.PATH : undefined
  return {text, args, program: args[0], nodeDir: nodeDirOf(path)}
}

/** The first entry of a plist's PATH: the Node folder install put there. */
function nodeDirOf(path: string | undefined): string | undefined {
  return path?.split(':')[0] || undefined
}

function flagValue(args: string[], flag: string): string | undefined {
  const at = args.indexOf(flag)
  return at === -1 ? undefined : args[at + 1]
}

function describeJob(label: string, job: LaunchdJob, unit: UnitStatus): string {
  if (!unit.installed && unit.state === 'not-installed') return `${label} not installed (${job.label})`
  const pid = unit.pid === undefined ? '' : `, PID ${unit.pid}`
  return `${label} ${unit.state}${pid} (${job.label})${unit.installed ? '' : `, loaded but ${job.plistPath} is gone`}`
}

/**
 * The launchd backend: per-user agents in `~/Library/LaunchAgents`, loaded
 * into the `gui/<uid>` domain. Every launchctl call goes through `ctx.exec`.
 */
export function createLaunchdBackend(ctx: ServiceContext): Backend {
  const [serverJob, watchdogJob] = launchdJobs(ctx.home)
  const paths = pathsFor(ctx.home, ctx.env)

  function plan(spec: UnitSpec, options: {watchdog: boolean}): InstallPlan {
    const files = [{path: serverJob.plistPath, content: buildPlist(renderServerPlist(spec))}]
    if (options.watchdog) files.push({path: watchdogJob.plistPath, content: buildPlist(renderWatchdogPlist(spec))})
    const jobs = options.watchdog ? [serverJob, watchdogJob] : [serverJob]
    return {
      files,
      commands: [
        // Booted out only when loaded; the watchdog first, so it cannot restart a server that is being replaced.
        ...[...jobs].reverse().map((job) => [LAUNCHCTL, 'bootout', `gui/${ctx.uid}/${job.label}`]),
        ...jobs.flatMap((job) => [
          [LAUNCHCTL, 'enable', `gui/${ctx.uid}/${job.label}`],
          [LAUNCHCTL, 'bootstrap', `gui/${ctx.uid}`, job.plistPath],
        ]),
      ],
    }
  }

  function dryRun(planned: InstallPlan, watchdog: boolean): ServiceResult {
    const details = ['Nothing was changed. An install would:']
    if (!watchdog && existsSync(watchdogJob.plistPath)) {
      details.push(`run: ${commandText([LAUNCHCTL, 'bootout', `gui/${ctx.uid}/${watchdogJob.label}`])} (when loaded)`, `remove: ${watchdogJob.plistPath}`)
    }

    for (const file of planned.files) {
      details.push(`write ${file.path} (mode 0644):`, ...file.content.trimEnd().split('\n').map((line) => `  ${line}`))
    }

    for (const command of planned.commands) details.push(`run: ${commandText(command)}${command[1] === 'bootout' ? ' (when loaded)' : ''}`)
    return {success: true, platform: PLATFORM, message: `Dry run: ${NAMES.serviceName} service install`, details}
  }

  /**
   * Install steps:
   * 1. validate host and port, resolve the binary, render the plists (any
   *    failure here stops before anything is written or run);
   * 2. for a dry run, describe the plan and stop;
   * 3. ask launchctl which jobs are loaded (this also proves it can be run);
   * 4. write the plists atomically, mode 0644, and create the log folder;
   * 5. boot out the loaded jobs, watchdog first; with `--no-watchdog`, a
   *    watchdog left from an earlier install is booted out and its plist removed;
   * 6. enable and bootstrap the server, then the watchdog (`load -w` on a
   *    launchctl without bootstrap).
   */
  async function install(options: InstallOptions): Promise<ServiceResult> {
    let spec: UnitSpec
    let planned: InstallPlan
    try {
      spec = makeUnitSpec(ctx, options)
      planned = plan(spec, {watchdog: options.watchdog})
    } catch (error) {
      if (error instanceof UserError) return failed(error.message, error.details)
      throw error
    }

    if (options.dryRun) return dryRun(planned, options.watchdog)

    const launchctl = new Launchctl(ctx)
    try {
      const loaded = new Map<LaunchdJob, boolean>()
      for (const job of [watchdogJob, serverJob]) loaded.set(job, (await launchctl.inspect(job)).loaded)

      try {
        mkdirSync(paths.serverDir, {recursive: true})
        writeFilesAtomically(planned.files)
      } catch (error) {
        const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message
        return failed(`Cannot write the launchd agents to ${paths.launchAgentsDir} (${reason}); nothing was loaded.`, [
          'Make sure that folder and ~/.amplifier/server are writable directories, then run install again.',
        ])
      }

      for (const job of [watchdogJob, serverJob]) {
        if (!loaded.get(job)) continue
        const result = await launchctl.unload(job)
        if (result.code !== 0) return failed(`Could not stop ${job.label}: ${outputOf(result)}`, [`Try again: ${NAMES.bin} service install`])
      }

      const details = planned.files.map((file) => `Wrote ${file.path}`)
      if (!options.watchdog && existsSync(watchdogJob.plistPath)) {
        removeFile(watchdogJob.plistPath)
        details.push(`Removed ${watchdogJob.plistPath}`)
      }

      const jobs = options.watchdog ? [serverJob, watchdogJob] : [serverJob]
      for (const job of jobs) {
        const result = await launchctl.load(job)
        if (result.code !== 0) {
          return failed(`Could not load ${job.label}: ${outputOf(result)}`, [
            `Check ${job.plistPath}, then run ${NAMES.bin} service install again.`,
            `Remove the half-finished install: ${NAMES.bin} service uninstall`,
          ])
        }
      }

      const names = planned.files.map((file) => basename(file.path)).join(' and ')
      return {
        success: true,
        platform: PLATFORM,
        message: `Installed ${names} (launchd user ${planned.files.length > 1 ? 'agents' : 'agent'}).`,
        details: [...details, `Runs: ${spec.bin}`, `Serves: ${serverUrl(spec.host, spec.port)}`, `Logs: ${paths.serverDir}`, `Status: ${NAMES.bin} service status`],
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
      const loaded: LaunchdJob[] = []
      for (const job of jobs) if ((await launchctl.inspect(job)).loaded) loaded.push(job)
      const files = jobs.filter((job) => existsSync(job.plistPath))
      if (loaded.length === 0 && files.length === 0) {
        return {success: true, platform: PLATFORM, message: `${NAMES.serviceName} service is not installed; nothing to do.`, details: []}
      }

      const details: string[] = []
      for (const job of loaded) {
        const result = await launchctl.unload(job)
        if (result.code !== 0) return failed(`Could not stop ${job.label}: ${outputOf(result)}`, [`Nothing was removed. Try again: ${NAMES.bin} service uninstall`])
        details.push(`Stopped ${job.label}`)
      }

      for (const job of files) {
        removeFile(job.plistPath)
        details.push(`Removed ${job.plistPath}`)
      }

      details.push(`Data in ${paths.amplifierHome} was left in place.`)
      return {success: true, platform: PLATFORM, message: `Uninstalled ${NAMES.serviceName} service.`, details}
    } catch (error) {
      if (error instanceof UserError) return failed(error.message, error.details)
      throw error
    }
  }

  /**
   * Status steps: which plists exist, what launchctl says about each job
   * (`print`, or `list` on an older launchctl), whether the server answers
   * on the host and port its installed plist names, and drift warnings
   * (deprecated binary, missing executable or Node folder).
   */
  async function status(): Promise<StatusResult> {
    const launchctl = new Launchctl(ctx)
    const installed = {server: readInstalled(serverJob.plistPath), watchdog: readInstalled(watchdogJob.plistPath)}
    const unitOf = async (job: LaunchdJob, plistFile: InstalledPlist | undefined): Promise<UnitStatus> => {
      const {loaded, state, pid} = await launchctl.inspect(job)
      return {installed: plistFile !== undefined, state: plistFile === undefined && !loaded ? 'not-installed' : state, ...(pid === undefined ? {} : {pid})}
    }

    let server: UnitStatus
    let watchdog: UnitStatus
    try {
      server = await unitOf(serverJob, installed.server)
      watchdog = await unitOf(watchdogJob, installed.watchdog)
    } catch (error) {
      if (!(error instanceof UserError)) throw error
      const unknown = (plistFile: InstalledPlist | undefined): UnitStatus => ({installed: plistFile !== undefined, state: 'unknown'})
      return {
        ...failed(`Cannot read the service state: ${error.message}`, error.details),
        installed: installed.server !== undefined || installed.watchdog !== undefined,
        server: unknown(installed.server),
        watchdog: unknown(installed.watchdog),
        health: null,
        warnings: [],
      }
    }

    const definitions = [installed.server, installed.watchdog].filter((plistFile): plistFile is InstalledPlist => plistFile !== undefined)
    const warnings = [
      ...[serverJob, watchdogJob].flatMap((job, i) => {
        const problem = [installed.server, installed.watchdog][i]?.problem
        return problem === undefined ? [] : [`Warning: ${job.plistPath} is not a readable property list (${problem}).\n  Re-run: ${NAMES.bin} service install`]
      }),
      ...staleWarnings(definitions),
    ]
    for (const [job, unit] of [
      [serverJob, server],
      [watchdogJob, watchdog],
    ] as const) {
      if (unit.installed && unit.state === 'not-loaded') {
        warnings.push(`Warning: ${job.plistPath} exists but launchd has not loaded it.\n  Run: ${NAMES.bin} service install`)
      }
    }

    let health: StatusResult['health'] = null
    if (installed.server && installed.server.problem === undefined) {
      const host = flagValue(installed.server.args, '--host') ?? DEFAULT_HOST
      const port = Number(flagValue(installed.server.args, '--port') ?? DEFAULT_PORT)
      const url = `${serverUrl(host, Number.isInteger(port) && port > 0 && port < 65_536 ? port : DEFAULT_PORT)}/api/health`
      const {checkHealth} = await import('../health.js')
      const answer = await checkHealth(url, 2000)
      health = {url, healthy: answer.healthy, ...(answer.reason === undefined ? {} : {reason: answer.reason})}
    }

    const anyInstalled = server.installed || watchdog.installed
    const details = ['Platform: macos (launchd user agents)', describeJob('Server:  ', serverJob, server), describeJob('Watchdog:', watchdogJob, watchdog)]
    if (health) details.push(`Health:   ${health.url} ${health.healthy ? 'healthy' : `not healthy (${health.reason})`}`)
    if (!anyInstalled) details.push(`Install it: ${NAMES.bin} service install`)
    return {
      success: true,
      platform: PLATFORM,
      message: anyInstalled ? `${NAMES.serviceName} service is installed.` : `${NAMES.serviceName} service is not installed.`,
      details,
      installed: anyInstalled,
      server,
      watchdog,
      health,
      warnings,
    }
  }

  // Placeholders until the operations are implemented; they fail rather than pretend.
  const pending = async (): Promise<ServiceResult> => failed('not implemented')
  return {platform: PLATFORM, plan, install, uninstall, status, start: pending, stop: pending, restart: pending, logs: pending}
}
