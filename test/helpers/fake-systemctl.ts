import type {Exec, ExecResult, StreamLines} from '../../src/lib/service/types.js'

const SERVER = 'amplifier-distro.service'
const WATCHDOG = 'amplifier-distro-watchdog.service'
const SOCKET = 'amplifier-distro.socket'

/** One unit as the fake manager keeps it. */
export interface FakeUnit {
  ActiveState: string
  SubState: string
  Result: string
  MainPID: number
  ExecMainStatus?: number
}

const stopped = (): FakeUnit => ({ActiveState: 'inactive', SubState: 'dead', Result: 'success', MainPID: 0})
const ok = (stdout = ''): ExecResult => ({code: 0, stdout, stderr: ''})

/** The start limit the units carry (StartLimitBurst=); the fake counts starts since the last reset-failed, as tests run well within the interval. */
const START_LIMIT_BURST = 5

/**
 * A user manager that keeps the three units' state and answers `systemctl
 * --user` as systemd does for the calls the backend makes (show, start,
 * stop, restart with PartOf=, enable --now, try-restart, reset-failed), plus
 * `journalctl` (the lines given) and `loginctl` (the linger answer given).
 * As measured on systemd 252: a unit it cannot load is refused at once,
 * `--no-block` or not; a start past the start limit leaves the unit
 * `failed (start-limit-hit)`, refused with systemd's words when waited for
 * and accepted (exit 0) under `--no-block`; `reset-failed` forgets the
 * count. The socket follows the server as its `Requires=` and the socket's
 * `StopWhenUnneeded=yes` make it: a start of the server starts it, a stop
 * of either stops both, and a port taken fails it (`resources`) while the
 * server stays `inactive (dead)`. Every call is recorded as an argument vector.
 */
export class FakeManager {
  readonly calls: string[][] = []
  readonly units: Record<string, FakeUnit> = {[SERVER]: stopped(), [WATCHDOG]: stopped(), [SOCKET]: stopped()}
  /** When true, the socket cannot listen: a start of the server fails it with `resources`. */
  portTaken = false
  /** When false, every systemctl call fails as with no user manager. */
  reachable = true
  /** The journal's JSON lines, oldest first. */
  journal: string[] = []
  /** `loginctl show-user … --property=Linger --value`: its stdout, or undefined for no logind. */
  linger: string | undefined = 'no'
  /** The PID the next started server gets (then counts up); a test points its health server at it. */
  nextPid = 5000
  /** Set false to keep a started server unit from being given a main PID (it never comes up). */
  serverComesUp = true
  /** With serverComesUp false: the started server fails at once and for good (exit status 78) instead of restarting. */
  serverFailsForGood = false
  /** Units systemd cannot load (their file is gone): every start of them is refused. */
  readonly missing = new Set<string>()
  /** Starts of each unit since its last reset-failed. */
  readonly starts: Record<string, number> = {[SERVER]: 0, [WATCHDOG]: 0, [SOCKET]: 0}

  /** Starts `unit`; false when the start limit stops it (the unit is then failed). */
  private begin(unit: string): boolean {
    if (this.starts[unit] >= START_LIMIT_BURST) {
      this.units[unit] = {ActiveState: 'failed', SubState: 'failed', Result: 'start-limit-hit', MainPID: 0}
      return false
    }

    this.starts[unit]++
    if (unit === SERVER && !this.missing.has(SOCKET)) {
      if (this.portTaken) {
        this.units[SOCKET] = {ActiveState: 'failed', SubState: 'failed', Result: 'resources', MainPID: 0}
        this.units[SERVER] = stopped()
        return true
      }

      this.units[SOCKET] = {ActiveState: 'active', SubState: 'running', Result: 'success', MainPID: 0}
    }

    if (unit === SERVER && !this.serverComesUp && this.serverFailsForGood) {
      this.units[unit] = {ActiveState: 'failed', SubState: 'failed', Result: 'exit-code', MainPID: 0, ExecMainStatus: 78}
      return true
    }

    const pid = unit === SERVER && !this.serverComesUp ? 0 : this.nextPid++
    this.units[unit] = {ActiveState: pid ? 'active' : 'activating', SubState: pid ? 'running' : 'auto-restart', Result: 'success', MainPID: pid}
    return true
  }

  /** Runs start jobs for `units`: refused at once for a unit systemd cannot load; a start limit refuses only a job that is waited for. */
  private startJobs(units: string[], noBlock: boolean, begin: (unit: string) => boolean): ExecResult {
    const unknown = units.find((unit) => this.missing.has(unit))
    if (unknown) return {code: 5, stdout: '', stderr: `Failed to start ${unknown}: Unit ${unknown} not found.\n`}
    const limited = units.filter((unit) => !begin(unit))
    if (limited.length === 0 || noBlock) return ok()
    return {
      code: 1,
      stdout: '',
      stderr: `Job for ${limited[0]} failed because start of the service was attempted too often.\nSee "systemctl --user status ${limited[0]}" for details.\n`,
    }
  }

  private systemctl(args: string[]): ExecResult {
    if (!this.reachable) return {code: 1, stdout: '', stderr: 'Failed to connect to bus: No such file or directory\n'}
    const [verb, ...rest] = args
    const units = rest.filter((arg) => !arg.startsWith('--'))
    const noBlock = rest.includes('--no-block')
    switch (verb) {
      case 'show': {
        if (rest.includes('--property=MainPID')) return ok(`${this.units[units[0]].MainPID}\n`)
        if (rest.includes('--property=ActiveState')) return ok(`${this.units[units[0]].ActiveState}\n`)
        const block = (unit: string) =>
          Object.entries({LoadState: this.missing.has(unit) ? 'not-found' : 'loaded', ...this.units[unit], FragmentPath: `/fake/${unit}`, NRestarts: 0})
            .map(([key, value]) => `${key}=${value ?? ''}`)
            .join('\n')
        return ok(`${units.map((unit) => block(unit)).join('\n\n')}\n`)
      }

      case 'start': {
        return this.startJobs(units, noBlock, (unit) => this.units[unit].ActiveState === 'active' || this.begin(unit))
      }

      case 'stop': {
        for (const unit of units) this.units[unit] = stopped()
        // Requires=: stopping the socket stops the server; PartOf=: stopping the server stops the watchdog;
        // StopWhenUnneeded=: the socket stops with the server.
        if (units.includes(SERVER) || units.includes(SOCKET)) {
          for (const unit of [SERVER, WATCHDOG, SOCKET]) if (this.units[unit].ActiveState !== 'failed') this.units[unit] = stopped()
        }

        return ok()
      }

      case 'restart': {
        const watchdogRan = this.units[WATCHDOG].ActiveState === 'active'
        const answer = this.startJobs(units, noBlock, (unit) => this.begin(unit))
        // PartOf=: a running watchdog is restarted with the server; a stopped one stays stopped.
        if (answer.code === 0 && units.includes(SERVER) && watchdogRan) this.begin(WATCHDOG)
        return answer
      }

      case 'enable': {
        if (!rest.includes('--now')) return ok()
        return this.systemctl(['start', ...rest.filter((arg) => arg !== '--now')])
      }

      case 'try-restart': {
        return this.startJobs(
          units.filter((unit) => this.units[unit].ActiveState === 'active'),
          noBlock,
          (unit) => this.begin(unit),
        )
      }

      case 'reset-failed': {
        const unknown = units.find((unit) => this.missing.has(unit))
        if (unknown) return {code: 1, stdout: '', stderr: `Failed to reset failed state of unit ${unknown}: Unit ${unknown} not loaded.\n`}
        for (const unit of units) {
          this.starts[unit] = 0
          if (this.units[unit].ActiveState === 'failed') this.units[unit] = stopped()
        }

        return ok()
      }

      default: {
        return ok()
      }
    }
  }

  /** The command runner to hand to the backend. */
  readonly exec: Exec = async (file, args) => {
    this.calls.push([file, ...args])
    if (file === 'systemctl') return this.systemctl(args.slice(1))
    if (file === 'journalctl') {
      const at = args.indexOf('--lines')
      const count = at === -1 ? this.journal.length : Number(args[at + 1])
      return ok(this.journal.slice(-count).map((line) => `${line}\n`).join(''))
    }

    if (file === 'loginctl') return this.linger === undefined ? {code: 1, stdout: '', stderr: 'Failed to connect to bus\n'} : ok(`${this.linger}\n`)
    return {code: 127, stdout: '', stderr: `${file}: not found`}
  }

  /** The line streamer: hands over the journal lines added while it follows, until the signal fires. */
  readonly stream: StreamLines = async (file, args, options) => {
    this.calls.push([file, ...args])
    let sent = 0
    const push = () => {
      for (; sent < this.pending.length; sent++) options.onLine(this.pending[sent])
    }

    this.onPending = push
    push()
    await new Promise<void>((resolve) => {
      if (options.signal?.aborted) resolve()
      options.signal?.addEventListener('abort', () => resolve(), {once: true})
    })
    this.onPending = undefined
    return ok()
  }

  private readonly pending: string[] = []
  private onPending: (() => void) | undefined

  /** A journal line that arrives while `service logs --follow` runs. */
  arrive(line: string): void {
    this.pending.push(line)
    this.onPending?.()
  }
}

/** A journal entry as `journalctl --output json` prints it. */
export function journalEntry(unit: string, identifier: string, pid: number, message: string, seconds: number, cursor = `c${seconds}`): string {
  return JSON.stringify({
    __CURSOR: cursor,
    __REALTIME_TIMESTAMP: String(seconds * 1_000_000),
    _SYSTEMD_USER_UNIT: unit,
    SYSLOG_IDENTIFIER: identifier,
    _PID: String(pid),
    MESSAGE: message,
  })
}
