import {dirname} from 'node:path'

import {UserError} from '../../src/lib/errors.js'
import type {HealthAnswer} from '../../src/lib/server/health.js'
import type {Effects, Service} from '../../src/lib/service/core.js'
import type {Definition, Driver, Inspection, JobState, LogsAnswer, PlannedCommand, Role, SocketState} from '../../src/lib/service/driver.js'
import type {LogsOptions, PlannedFile, ServiceContext, UnitSpec} from '../../src/lib/service/types.js'

/** A job as the fake supervisor keeps it. */
export function job(overrides: Partial<JobState> = {}): JobState {
  return {held: 'loaded', state: 'inactive', summary: 'stopped', detail: 'inactive (dead)', running: false, gaveUp: false, configError: false, orphaned: false, ...overrides}
}

/** A listening socket as the fake supervisor keeps it for the server (a supervisor like systemd). */
export function socket(overrides: Partial<SocketState> = {}): SocketState {
  return {name: 'fake-socket', file: '/fake/units/server.socket', installed: true, held: 'loaded', state: 'active', detail: 'active (listening)', running: true, portTaken: false, startLimit: false, ...overrides}
}

const running = (pid: number): JobState => job({state: 'active', summary: 'active (running)', detail: 'active (running)', running: true, pid})

/**
 * An in-memory supervisor behind the Driver interface: definitions are
 * strings in a map, jobs are values, every request is recorded. Settings
 * say how it answers: unreachable, a refusal of one request, a server that
 * never comes up.
 */
export class FakeDriver implements Driver {
  readonly name = 'fakevisor'
  readonly platform = 'linux'
  readonly manager = 'fake manager'
  readonly kind = {one: 'fake unit', many: 'fake units', file: 'fake file'}
  readonly folder = '/fake/units'
  readonly reloadHint = 'amp-distro service restart'
  readonly configErrorNote = ', so the fakevisor leaves it down'
  watchdogExitRevivesServer = true

  /** Definition files by path. */
  readonly contents = new Map<string, string>()
  jobs: Record<Role, JobState> = {server: job({held: 'not-loaded', state: 'not-loaded'}), watchdog: job({held: 'not-loaded', state: 'not-loaded'})}
  /** Requests that change jobs or files, in order: `load server,watchdog`, `unload watchdog`… */
  readonly calls: string[] = []
  /** Questions asked: `inspect`. */
  readonly questions: string[] = []
  reachable = true
  /** The request (`load`, `start`, `unload`…) the supervisor refuses with a UserError. */
  refuse?: string
  /** The error `write` throws, when set. */
  writeError?: NodeJS.ErrnoException
  /** False: a started server never gets a main PID. */
  serverComesUp = true
  /** With serverComesUp false: the server fails at once with a configuration error. */
  serverFailsForGood = false
  /** With serverComesUp false: the supervisor cannot start the server's program at all (launchd's own exit 78). */
  serverSpawnFails = false
  /** The account may not install, start or restart with this supervisor (as launchd refuses root). */
  refusesCaller = false
  nextPid = 4000
  /** The server's last output lines. */
  output: string[] = ['listening failed']
  /** The program that holds a port, as a driver that can tell names it. */
  portOwner?: (port: number) => string | undefined
  startLimitRecovery?: string
  /** Resolves a host for a supervisor that listens itself; the hosts asked are in `calls`. */
  listenAddress?: (host: string) => Promise<string>
  /** The spec `render` was last given. */
  rendered?: UnitSpec
  /** What `logs` answers. */
  logsAnswer: LogsAnswer = {count: 2, message: '2 lines of the fake units.', details: [], readable: true}

  admit(command: string): void {
    if (this.refusesCaller) throw new UserError(`Refusing to ${command} as this account.`, {details: ['Run it as yourself.']})
  }

  jobName = (role: Role) => `fake-${role}`
  files = (role: Role) => [`${this.folder}/${role}.unit`]

  render(spec: UnitSpec, roles: readonly Role[]): PlannedFile[] {
    this.rendered = spec
    return roles.map((role) => ({path: this.files(role)[0], content: `run ${spec.bin} ${role} --host ${spec.host} --port ${spec.port}\npath ${spec.path}\n`}))
  }

  write(files: readonly PlannedFile[]): void {
    if (this.writeError) throw this.writeError
    for (const file of files) this.contents.set(file.path, file.content)
    this.calls.push(`write ${files.length}`)
  }

  remove(role: Role): string[] {
    return this.files(role).filter((file) => this.contents.delete(file))
  }

  read(role: Role): Definition | undefined {
    const file = this.files(role)[0]
    const text = this.contents.get(file)
    if (text === undefined) return undefined
    const words = text.split('\n')[0].split(' ')
    const path = text.split('\n')[1]?.slice('path '.length)
    if (words[0] !== 'run') return {file, text, problem: 'no run line'}
    return {file, text, program: words[1], nodeDir: path?.split(':')[0], target: {host: words[4], port: Number(words[6])}}
  }

  findMistake = (definition: Definition) => ({line: 1, text: definition.text.split('\n')[0]})

  async inspect(): Promise<Inspection> {
    this.questions.push('inspect')
    return this.reachable ? {jobs: {server: {...this.jobs.server}, watchdog: {...this.jobs.watchdog}}} : {unreachable: ['fake manager: connection refused', 'Start the fake manager.']}
  }

  async mainPid(role: Role) {
    return this.jobs[role].pid
  }

  async gaveUp(role: Role) {
    return this.jobs[role].gaveUp
  }

  loadPlan = (roles: readonly Role[]): PlannedCommand[] => roles.map((role) => ({argv: ['fakectl', 'load', this.jobName(role)]}))
  unloadPlan = (role: Role): PlannedCommand[] => [{argv: ['fakectl', 'unload', this.jobName(role)], when: 'when loaded'}]

  private act(request: string, roles: readonly Role[]): void {
    this.calls.push(`${request} ${roles.join(',')}`)
    if (this.refuse === request) throw new UserError(`fakectl ${request} failed (exit 1).`, {details: ['fakectl: refused']})
  }

  /** Starts a job: the server gets a new main PID unless it does not come up. */
  private run(role: Role): void {
    // The server's socket, where the fake holds one, keeps its state.
    const listener = role === 'server' ? this.jobs.server.socket : undefined
    this.jobs[role] = {...this.started(role), ...(listener ? {socket: listener} : {})}
  }

  private started(role: Role): JobState {
    if (role === 'watchdog' || this.serverComesUp) return running(this.nextPid++)
    if (this.serverSpawnFails) {
      return job({state: 'not running', summary: 'not running', detail: 'not running: the program could not be started', gaveUp: true, spawnFailed: 'fakevisor could not start the program: check /fake/bin'})
    }

    return this.serverFailsForGood
      ? job({state: 'failed', summary: 'failed', detail: 'failed (exit-code)', gaveUp: true, configError: true, failure: 'exit-code'})
      : job({state: 'activating', summary: 'activating (auto-restart)', detail: 'activating (auto-restart)', running: true})
  }

  async load(roles: readonly Role[]) {
    this.act('load', roles)
    for (const role of roles) this.run(role)
    return ['Note: the fake manager took the units.']
  }

  async unload(role: Role) {
    this.act('unload', [role])
    this.jobs[role] = job({held: 'not-loaded', state: 'not-loaded'})
    return `Unloaded ${this.jobName(role)}`
  }

  async forget(roles: readonly Role[]) {
    this.calls.push(`forget ${roles.join(',')}`)
  }

  async start(roles: readonly Role[]) {
    this.act('start', roles)
    for (const role of roles) if (!this.jobs[role].running) this.run(role)
  }

  async stop(roles: readonly Role[]) {
    this.act('stop', roles)
    const listener = this.jobs.server.socket
    for (const role of roles) this.jobs[role] = job()
    if (listener) this.jobs.server.socket = socket({state: 'inactive', detail: 'inactive (dead)', running: false})
  }

  async restart(roles: readonly Role[]) {
    this.act('restart', roles)
    for (const role of roles) this.run(role)
  }

  async logTail(_role: Role, lines: number) {
    return this.output.slice(-lines)
  }

  async logs(options: LogsOptions) {
    this.calls.push(`logs ${options.lines}`)
    return this.logsAnswer
  }

  portOwnerCommand = (port: number) => `who-has ${port}`

  async statusNotes() {
    return {details: ['Linger:   on'], linger: true}
  }
}

/** A fake clock, health endpoint and port: the health endpoint answers from the driver's server PID while `healthy`. */
export class FakeWorld implements Effects {
  time = 0
  healthy = true
  version = '0.3.0'
  /** Whether another program accepts connections on the server's port. */
  portHeld = false
  readonly asked: string[] = []

  constructor(private readonly driver: FakeDriver) {}

  check = async (url: string): Promise<HealthAnswer> => {
    this.asked.push(url)
    const pid = this.driver.jobs.server.pid
    if (!this.healthy || !pid) return {healthy: false, reason: 'connection refused'}
    return {healthy: true, body: {pid, version: this.version, uptimeSeconds: 75}}
  }

  probe = async () => this.portHeld
  now = () => this.time
  sleep = async (ms: number) => {
    this.time += ms
  }
}

/** The outside world of a service command, with nothing real in it but this Node. */
export function fakeContext(overrides: Partial<ServiceContext> = {}): ServiceContext {
  return {
    home: '/nonexistent/home',
    env: {PATH: '/usr/bin:/bin'},
    uid: 1000,
    user: 'ada',
    exec: async () => {
      throw new Error('the core runs no programs')
    },
    stream: async () => {
      throw new Error('the core runs no programs')
    },
    version: '0.3.0',
    osRelease: '6.1.0',
    nodePath: process.execPath,
    resolveBinary: () => ({path: process.execPath}),
    ...overrides,
  }
}

/** A service over a fake driver and a fake world. */
export function fakeService(overrides: Partial<ServiceContext> = {}): {service: Service; driver: FakeDriver; world: FakeWorld} {
  const driver = new FakeDriver()
  const world = new FakeWorld(driver)
  return {service: {driver, ctx: fakeContext(overrides), effects: world}, driver, world}
}

/** The Node folder the fake context puts first on a unit's PATH. */
export const NODE_DIR = dirname(process.execPath)
