/**
 * End-to-end harness: a real systemd user manager (`systemd --user`) running in a private mount
 * namespace, so tests get a manager of their own even though systemd is not PID 1 on the machine.
 *
 * Layout of one manager:
 *   node ─ unshare --mount --propagation private ─ sh (tmpfs on /run, drop-ins) ─ exec script (pty)
 *          └─ sh (bind the pty over /dev/console) ─ exec env -i … systemd --user
 * and systemd-journald, which the first sh starts before `script`, from a subshell: a child of
 * `script` would keep it waiting on exit.
 * The `script` process (the spawned child's PID) is the namespace anchor: every command for the
 * manager runs through `nsenter --mount --target <anchor>`. The pty carries the manager's own log,
 * captured for `log()`. The units log to the namespace's own journald (a volatile journal on the
 * private /run), read with `journal(unit)`. With `AMP_DISTRO_E2E_TTY=1` in the environment the
 * units' output goes to the pty instead (`DefaultStandardOutput=tty`), for debugging only: the
 * journal then holds nothing of theirs.
 * Network and /tmp are shared with the host; HOME is a temporary directory on the shared filesystem.
 *
 * The cgroup filesystem is shared too, and a user manager builds its unit cgroups (app.slice/…) under
 * the cgroup it starts in: two managers started from the same cgroup would share
 * `app.slice/<unit>.service`, see each other's processes as left-overs and kill them on stop. So each
 * manager starts in a cgroup of its own, removed by stop(). journald files a line under
 * `_SYSTEMD_USER_UNIT` only when the sender's cgroup path is shaped like a real user manager's:
 * slices, then `user@<uid>.service`, then the manager's own cgroups. So each manager gets
 * `<slices of ours>/amp-distro-e2e-<pid>-<hex>.slice/user@<uid>.service`, in every hierarchy systemd
 * tracks processes with, and its journald a sibling `systemd-journald.service` in the same slice.
 *
 * Usage:
 *   describeSystemd('service install', function (manager) {
 *     it('starts the unit', async () => {
 *       const um = manager()   // write units under `${um.home}/.config/systemd/user/`
 *       await um.systemctl('daemon-reload')
 *       await waitFor(async () => (await um.mainPid('x.service')) || undefined, {timeoutMs: 10_000, what: 'x to run'})
 *     })
 *   })
 * Needs root, systemd, util-linux (unshare, nsenter), bsdutils (script) and mount.
 */
import {type ChildProcess, execFile, execFileSync, spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv
  timeoutMs?: number
}

export interface UserManager {
  /** Temporary HOME (a real directory on the shared filesystem). */
  home: string
  /** Environment for commands run inside: HOME, USER, LOGNAME, XDG_RUNTIME_DIR, PATH, LANG. */
  env: NodeJS.ProcessEnv
  /** PID of `systemd --user` (a host PID, like every PID systemctl reports). */
  managerPid: number
  /** PID of the process anchoring the mount namespace (`nsenter --target`). */
  anchorPid: number
  /** The mount namespace, as `readlink /proc/<pid>/ns/mnt` prints it. */
  namespace: string
  /** PID of the namespace's `systemd-journald` (a host PID). */
  journaldPid: number
  /**
   * The slices made for this manager (one per tracking hierarchy), holding its `user@<uid>.service`
   * and its journald; empty when they could not be created.
   */
  cgroups: string[]
  /** Milliseconds from spawning the namespace until `is-system-running` said running/degraded. */
  startMs: number
  /** Runs a program inside the namespace with `options.env` merged over `env`; never throws. */
  run(file: string, args: string[], options?: RunOptions): Promise<RunResult>
  /**
   * Starts a program inside the namespace and returns at once, for programs that run until signalled;
   * `nsenter` execs it, so the child's PID is the program's own. stop() kills it if it still runs.
   */
  spawn(file: string, args: string[], options?: {env?: NodeJS.ProcessEnv}): ChildProcess
  /** `systemctl --user …` inside the namespace. */
  systemctl(...args: string[]): Promise<RunResult>
  /** `systemctl --user show -p …` parsed into property → value; rejects when systemctl fails. */
  show(unit: string, properties: string[]): Promise<Record<string, string>>
  /** The unit's MainPID; 0 when it is not running. */
  mainPid(unit: string): Promise<number>
  /**
   * A user unit's lines in the namespace's journal, oldest first, as `journalctl --user-unit <unit>
   * -o <output>` prints them (default `cat`: the messages alone); rejects when journalctl fails.
   */
  journal(unit: string, options?: {output?: string}): Promise<string>
  /**
   * The manager's console output captured so far (CRs and colour codes removed), then, while the
   * manager runs, the whole journal of the namespace (every unit's lines, with their sources).
   */
  log(): string
  /**
   * `systemctl --user exit`, waiting up to `exitTimeoutMs` (default 15 s) for the manager to stop its
   * units, then SIGKILLs whatever is left (namespace, cgroups, descendants); removes a temporary HOME.
   */
  stop(options?: {exitTimeoutMs?: number}): Promise<void>
}

export interface StartOptions {
  /** Use this HOME instead of a fresh temporary one; it is then left in place by `stop()`. */
  home?: string
  /** How long to wait for the manager to come up (default 30 s). */
  timeoutMs?: number
  /**
   * Send the units' output to the manager's pty (and so to `log()`) instead of the journal, for
   * debugging; defaults to true when the environment has `AMP_DISTRO_E2E_TTY=1`.
   */
  tty?: boolean
}

const SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']
const SYSTEMD_BINARIES = ['/lib/systemd/systemd', '/usr/lib/systemd/systemd']
const JOURNALD_BINARIES = ['/lib/systemd/systemd-journald', '/usr/lib/systemd/systemd-journald']
const RUNTIME_DIR = '/run/user/0'
const MANAGER_PID_FILE = '/run/amp-distro-e2e-manager.pid'
const JOURNALD_PID_FILE = '/run/amp-distro-e2e-journald.pid'
const MANAGER_PATH = '/usr/local/bin:/usr/bin:/bin'
/** Set to 1 for StartOptions.tty by default. */
const TTY_SWITCH = 'AMP_DISTRO_E2E_TTY'
const JOURNALD_CGROUP = 'systemd-journald.service'

/**
 * Runs in the new mount namespace. journald's journal stays volatile on the private /run: the host's
 * /var/log/journal may exist, and a persistent journal there would be shared by every namespace.
 * Under the debug switch, the manager's drop-in (not a command-line option, which is lost on
 * daemon-reload) carries DefaultStandardOutput=tty.
 */
const OUTER_SCRIPT = [
  'set -e',
  // Moves this shell (and so what it starts next) into the cgroups named one per line in $1.
  'join() { if [ -n "$1" ]; then printf "%s\\n" "$1" | while IFS= read -r dir; do echo $$ > "$dir/cgroup.procs"; done; fi; }',
  'mount -t tmpfs -o mode=0755 amp-distro-e2e /run',
  `mkdir -p /run/systemd/system /run/systemd/user.conf.d /run/systemd/journald.conf.d /run/systemd/journal /run/log/journal ${RUNTIME_DIR}`,
  `chmod 0700 ${RUNTIME_DIR}`,
  String.raw`printf '[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToWall=no\n' > /run/systemd/journald.conf.d/50-amp-distro-e2e.conf`,
  String.raw`if [ "$E2E_TTY" = 1 ]; then printf '[Manager]\nDefaultStandardOutput=tty\n' > /run/systemd/user.conf.d/50-amp-distro-e2e.conf; fi`,
  'join "$E2E_JOURNALD_CGROUPS"',
  // From a subshell, so that journald is not a child of `script`, which would wait for it on exit.
  `("$E2E_JOURNALD" </dev/null & echo $! > ${JOURNALD_PID_FILE})`,
  // Units started before journald listens would log nowhere.
  'tries=0; until [ -S /run/systemd/journal/stdout ]; do tries=$((tries + 1)); if [ $tries -gt 200 ]; then echo "systemd-journald did not open its sockets" >&2; exit 1; fi; sleep 0.05; done',
  'join "$E2E_MANAGER_CGROUPS"',
  'exec "$E2E_SCRIPT" -q -f -e -c "$E2E_INNER" /dev/null',
].join('\n')

/** Runs under the pty: the manager's log only goes to /dev/console, and only when it is a terminal. */
const INNER_SCRIPT = [
  'mount --bind "$(tty)" /dev/console',
  `echo $$ > ${MANAGER_PID_FILE}`,
  'exec env -i HOME="$E2E_HOME" USER=root LOGNAME=root SHELL=/bin/bash LANG=C.UTF-8' +
    ` PATH=${MANAGER_PATH} XDG_RUNTIME_DIR=${RUNTIME_DIR} "$E2E_SYSTEMD" --user`,
].join(' && ')

/** Thrown when this machine cannot host the harness at all (not Linux, not root, tools missing). */
export class HarnessUnavailableError extends Error {}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

function findTool(name: string): string | undefined {
  return SEARCH_PATH.map((dir) => path.join(dir, name)).find((file) => executable(file))
}

interface Tools {
  unshare: string
  nsenter: string
  script: string
  systemd: string
  journald: string
  journalctl: string
}

function locateTools(): Tools | string {
  if (process.platform !== 'linux') return `needs Linux (this is ${process.platform})`
  const uid = process.getuid?.()
  if (uid !== 0) return `needs root to create mount namespaces (uid ${uid})`
  const found = {
    unshare: findTool('unshare'),
    nsenter: findTool('nsenter'),
    script: findTool('script'),
    mount: findTool('mount'),
    systemctl: findTool('systemctl'),
    journalctl: findTool('journalctl'),
    systemd: SYSTEMD_BINARIES.find((file) => executable(file)),
    journald: JOURNALD_BINARIES.find((file) => executable(file)),
  }
  const missing = Object.entries(found)
    .filter(([, file]) => file === undefined)
    .map(([name]) => name)
  if (missing.length > 0) return `missing ${missing.join(', ')} (install systemd, util-linux, bsdutils, mount)`
  // The pty is bound over /dev/console inside the namespace; creating it would change the host's /dev.
  if (!existsSync('/dev/console')) return 'no /dev/console to bind the manager\'s pty over (a container started without a tty?)'
  return found as Tools
}

/** Why the harness cannot run here, or undefined when it can. */
export function systemdHarnessUnavailable(): string | undefined {
  const tools = locateTools()
  return typeof tools === 'string' ? tools : undefined
}

/** Polls `probe` until it yields something other than undefined/false; rejects naming `what` on timeout. */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | false>,
  options: {timeoutMs: number; intervalMs?: number; what: string},
): Promise<T> {
  const interval = options.intervalMs ?? 100
  const deadline = Date.now() + options.timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined && value !== false) return value
      lastError = undefined
    } catch (error) {
      lastError = error
    }

    if (Date.now() >= deadline) {
      const cause = lastError === undefined ? '' : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}${cause}`)
    }

    await new Promise((resolve) => setTimeout(resolve, Math.min(interval, Math.max(deadline - Date.now(), 1))))
  }
}

function readProc(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8')
  } catch {
    return undefined
  }
}

function mountNamespace(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`)
  } catch {
    return undefined
  }
}

/** True while the process exists and is not a zombie. */
export function isRunning(pid: number): boolean {
  const stat = readProc(pid, 'stat')
  if (stat === undefined) return false
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
  return state !== 'Z' && state !== 'X'
}

/** PIDs of live processes whose mount namespace is `namespace` (e.g. `mnt:[4026532176]`). */
export function pidsInMountNamespace(namespace: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const pid = Number(entry)
    if (pid !== process.pid && mountNamespace(pid) === namespace) pids.push(pid)
  }

  return pids
}

/**
 * For each hierarchy systemd tracks processes with (`name=systemd` on v1/hybrid machines, the unified
 * v2 one): the directory of the cgroup this process is in, cut back to its leading `*.slice`
 * components, because journald reads a user manager's cgroup path as slices and then
 * `user@<uid>.service`, and a component that is not a slice above it breaks the attribution.
 */
function cgroupBases(): string[] {
  const own = new Map<string, string>()
  for (const line of (readProc(process.pid, 'cgroup') ?? '').split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line)
    if (match && (match[1] === '' || match[1] === 'name=systemd')) own.set(match[1], match[2])
  }

  const dirs: string[] = []
  for (const line of (readProc(process.pid, 'mountinfo') ?? '').split('\n')) {
    const [mountFields, superFields] = line.split(' - ')
    if (superFields === undefined) continue
    const [, , , root, mountPoint] = mountFields.split(' ')
    const [fsType, , options = ''] = superFields.split(' ')
    const key = fsType === 'cgroup2' ? '' : fsType === 'cgroup' && options.split(',').includes('name=systemd') ? 'name=systemd' : undefined
    const cgroup = key === undefined ? undefined : own.get(key)
    if (cgroup === undefined) continue
    const relative = root !== '/' && cgroup.startsWith(root) ? cgroup.slice(root.length) : cgroup
    const components = relative.split('/').filter(Boolean)
    const firstOther = components.findIndex((component) => !component.endsWith('.slice'))
    dirs.push(path.join(mountPoint.replace(/\\040/g, ' '), ...(firstOther === -1 ? components : components.slice(0, firstOther))))
    own.delete(key!)
  }

  return dirs
}

/** The cgroups made for one manager, one of each per tracking hierarchy. */
interface ManagerCgroups {
  /** `amp-distro-e2e-<pid>-<hex>.slice`: removing these removes everything below. */
  slices: string[]
  /** `<slice>/user@<uid>.service`, where the manager starts. */
  manager: string[]
  /** `<slice>/systemd-journald.service`. */
  journald: string[]
}

/** Creates a fresh slice with a manager and a journald cgroup under each base; a reason string when that is impossible here. */
function createCgroups(name: string, uid: number): ManagerCgroups | string {
  const made: ManagerCgroups = {slices: [], manager: [], journald: []}
  try {
    for (const base of cgroupBases()) {
      const slice = path.join(base, name)
      mkdirSync(slice)
      made.slices.push(slice)
      for (const [list, child] of [
        [made.manager, `user@${uid}.service`],
        [made.journald, JOURNALD_CGROUP],
      ] as const) {
        mkdirSync(path.join(slice, child))
        list.push(path.join(slice, child))
      }
    }
  } catch (error) {
    removeCgroups(made.slices)
    return (error as Error).message
  }

  return made
}

/** PIDs of every process in these cgroups and their sub-cgroups. */
function pidsInCgroups(dirs: string[]): number[] {
  const pids: number[] = []
  const visit = (dir: string): void => {
    let entries
    try {
      entries = readdirSync(dir, {withFileTypes: true})
    } catch {
      return
    }

    for (const entry of entries) if (entry.isDirectory()) visit(path.join(dir, entry.name))
    for (const pid of (readProcFile(path.join(dir, 'cgroup.procs')) ?? '').split('\n')) if (/^\d+$/.test(pid)) pids.push(Number(pid))
  }

  for (const dir of dirs) visit(dir)
  return pids
}

/** Removes cgroup trees bottom-up; true when all are gone (a cgroup with processes cannot go). */
function removeCgroups(dirs: string[]): boolean {
  const remove = (dir: string): boolean => {
    let entries
    try {
      entries = readdirSync(dir, {withFileTypes: true})
    } catch {
      return true
    }

    let empty = true
    for (const entry of entries) if (entry.isDirectory()) empty = remove(path.join(dir, entry.name)) && empty
    try {
      rmdirSync(dir)
      return empty
    } catch {
      return false
    }
  }

  return dirs.map((dir) => remove(dir)).every(Boolean)
}

const CGROUP_NAME = /^amp-distro-e2e-(\d+)-[0-9a-f]+\.slice$/

/**
 * Kills and removes managers left behind by a test process that died without stopping them (SIGKILL,
 * OOM): their slices, next to where ours would go, are named after the owning PID. Returns how many
 * were reaped.
 */
export async function reapOrphanedManagers(): Promise<number> {
  const orphans: string[] = []
  for (const dir of cgroupBases()) {
    let names: string[]
    try {
      names = readdirSync(dir)
    } catch {
      continue
    }

    for (const name of names) {
      const owner = CGROUP_NAME.exec(name)?.[1]
      if (owner !== undefined && Number(owner) !== process.pid && !isRunning(Number(owner))) orphans.push(path.join(dir, name))
    }
  }

  for (let round = 0; round < 50 && orphans.length > 0; round++) {
    const pids = pidsInCgroups(orphans)
    for (const pid of pids) kill(pid, 'SIGKILL')
    if (pids.length === 0 && removeCgroups(orphans)) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }

  return new Set(orphans.map((dir) => path.basename(dir))).size
}

function readProcFile(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
}

/** Every descendant of `root`, as PID → start time (to tell a reused PID from the original). */
function descendants(root: number): Map<number, string> {
  const children = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = readProc(Number(entry), 'stat')
    if (stat === undefined) continue
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ppid = Number(fields[1])
    children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)])
  }

  const found = new Map<number, string>()
  const queue = [...(children.get(root) ?? [])]
  while (queue.length > 0) {
    const pid = queue.shift()!
    const start = startTime(pid)
    if (start === undefined || found.has(pid)) continue
    found.set(pid, start)
    queue.push(...(children.get(pid) ?? []))
  }

  return found
}

function startTime(pid: number): string | undefined {
  const stat = readProc(pid, 'stat')
  return stat === undefined ? undefined : stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal)
  } catch {
    // Already gone.
  }
}

function cleanLog(raw: string): string {
  // eslint-disable-next-line no-control-regex
  return raw.replace(/\u001B\[[0-9;?]*[A-Za-z]/g, '').replace(/\r+\n/g, '\n').replace(/\r/g, '')
}

function execIn(nsenter: string, anchor: number, file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      nsenter,
      ['--mount', '--target', String(anchor), '--', file, ...args],
      {env, encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024},
      (error, stdout, stderr) => {
        if (!error) {
          resolve({code: 0, stdout, stderr})
        } else if (typeof error.code === 'number') {
          resolve({code: error.code, stdout, stderr})
        } else if (error.killed) {
          resolve({code: 124, stdout, stderr: `${stderr}[harness] ${file} ${args.join(' ')}: killed after ${timeoutMs} ms\n`})
        } else {
          resolve({code: 127, stdout: stdout ?? '', stderr: `${stderr ?? ''}${error.message}\n`})
        }
      },
    )
  })
}

interface Live {
  anchorPid: number
  namespace?: string
  home?: string
  cgroups: string[]
}

/** Managers still running, so an abrupt exit of the test process does not leave them behind. */
const live = new Set<Live>()
process.on('exit', () => {
  for (const entry of live) {
    if (entry.namespace !== undefined) for (const pid of pidsInMountNamespace(entry.namespace)) kill(pid, 'SIGKILL')
    for (const pid of pidsInCgroups(entry.cgroups)) kill(pid, 'SIGKILL')
    kill(entry.anchorPid, 'SIGKILL')
    removeCgroups(entry.cgroups)
    if (entry.home !== undefined) rmSync(entry.home, {recursive: true, force: true})
  }
})

/** Starts a fresh `systemd --user` in its own mount namespace and waits until it is running. */
export async function startUserManager(options: StartOptions = {}): Promise<UserManager> {
  const tools = locateTools()
  if (typeof tools === 'string') throw new HarnessUnavailableError(tools)
  const timeoutMs = options.timeoutMs ?? 30_000
  const ownsHome = options.home === undefined
  const home = options.home ?? (await mkdtemp(path.join(os.tmpdir(), 'amp-distro-e2e-')))
  const env: NodeJS.ProcessEnv = {
    HOME: home,
    USER: 'root',
    LOGNAME: 'root',
    XDG_RUNTIME_DIR: RUNTIME_DIR,
    PATH: MANAGER_PATH,
    LANG: 'C.UTF-8',
  }

  await reapOrphanedManagers()
  const uid = process.getuid?.() ?? 0
  const cgroups = createCgroups(`amp-distro-e2e-${process.pid}-${randomBytes(4).toString('hex')}.slice`, uid)
  const began = Date.now()
  const child: ChildProcess = spawn(tools.unshare, ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', OUTER_SCRIPT], {
    env: {
      PATH: SEARCH_PATH.join(':'),
      SHELL: '/bin/sh',
      E2E_HOME: home,
      E2E_SYSTEMD: tools.systemd,
      E2E_SCRIPT: tools.script,
      E2E_INNER: INNER_SCRIPT,
      E2E_JOURNALD: tools.journald,
      E2E_MANAGER_CGROUPS: typeof cgroups === 'string' ? '' : cgroups.manager.join('\n'),
      E2E_JOURNALD_CGROUPS: typeof cgroups === 'string' ? '' : cgroups.journald.join('\n'),
      E2E_TTY: (options.tty ?? process.env[TTY_SWITCH] === '1') ? '1' : '',
    },
    // stdin stays an open pipe: `script` must not see EOF while the manager runs.
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const anchorPid = child.pid
  // Without a cgroup of its own the manager still works, but managers running at once interfere, and
  // journald files the units' lines as system units', which `journal()` does not find.
  let raw = typeof cgroups === 'string' ? `[harness] no cgroup of its own for this manager (${cgroups})\n` : ''
  let exited: string | undefined
  const closed = new Promise<void>((resolve) => {
    child.on('close', () => resolve())
  })
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    raw += chunk
  })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    raw += chunk
  })
  child.on('exit', (code, signal) => {
    exited = signal ? `signal ${signal}` : `code ${code}`
  })
  const spawnError = new Promise<Error>((resolve) => {
    child.on('error', resolve)
  })
  if (anchorPid === undefined) {
    const error = await spawnError
    if (ownsHome) await rm(home, {recursive: true, force: true})
    if (typeof cgroups !== 'string') removeCgroups(cgroups.slices)
    throw new Error(`cannot spawn ${tools.unshare}: ${error.message}`)
  }

  child.stdin!.on('error', () => {})
  // A suite that forgets stop() must not keep the test process alive: the exit hook below cleans up.
  for (const handle of [child, child.stdin, child.stdout, child.stderr] as unknown as {unref?: () => void}[]) handle.unref?.()
  const entry: Live = {anchorPid, home: ownsHome ? home : undefined, cgroups: typeof cgroups === 'string' ? [] : cgroups.slices}
  live.add(entry)
  const hostNamespace = mountNamespace(process.pid)

  let stopping: Promise<void> | undefined
  let managerPid = 0
  const run = (file: string, args: string[], runOptions: RunOptions = {}): Promise<RunResult> =>
    execIn(tools.nsenter, anchorPid, file, args, {...env, ...runOptions.env}, runOptions.timeoutMs ?? 30_000)
  const systemctl = (...args: string[]): Promise<RunResult> => run('systemctl', ['--user', ...args])
  const spawnIn = (file: string, args: string[], spawnOptions: {env?: NodeJS.ProcessEnv} = {}): ChildProcess =>
    spawn(tools.nsenter, ['--mount', '--target', String(anchorPid), '--', file, ...args], {env: {...env, ...spawnOptions.env}, stdio: ['ignore', 'pipe', 'pipe']})

  const show = async (unit: string, properties: string[]): Promise<Record<string, string>> => {
    const result = await systemctl('show', '-p', properties.join(','), '--', unit)
    if (result.code !== 0) throw new Error(`systemctl --user show ${unit} failed (${result.code}): ${result.stderr.trim()}`)
    const values: Record<string, string> = {}
    for (const line of result.stdout.split('\n')) {
      const equals = line.indexOf('=')
      if (equals > 0) values[line.slice(0, equals)] = line.slice(equals + 1)
    }

    return values
  }

  const journal = async (unit: string, journalOptions: {output?: string} = {}): Promise<string> => {
    const result = await run(tools.journalctl, ['--user-unit', unit, '-o', journalOptions.output ?? 'cat', '--no-pager', '-q'])
    if (result.code !== 0) throw new Error(`journalctl --user-unit ${unit} failed (${result.code}): ${result.stderr.trim()}`)
    return result.stdout
  }

  // Synchronous, so that log() stays a plain string for failure dumps; a journal that cannot be read says why.
  const wholeJournal = (): string => {
    if (stopping !== undefined || entry.namespace === undefined) return ''
    try {
      const text = execFileSync(tools.nsenter, ['--mount', '--target', String(anchorPid), '--', tools.journalctl, '-o', 'short-precise', '--no-pager', '-q'], {
        env,
        encoding: 'utf8',
        timeout: 10_000,
        maxBuffer: 16 * 1024 * 1024,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      return `----- journal -----\n${text}`
    } catch (error) {
      return `----- journal unreadable: ${(error as Error).message.split('\n')[0]} -----\n`
    }
  }

  const mainPid = async (unit: string): Promise<number> => {
    const value = (await show(unit, ['MainPID'])).MainPID
    if (value === undefined || !/^\d+$/.test(value)) throw new Error(`no MainPID for ${unit}: ${JSON.stringify(value)}`)
    return Number(value)
  }

  const stop = (stopOptions: {exitTimeoutMs?: number} = {}): Promise<void> => {
    stopping ??= (async () => {
      const tree = descendants(anchorPid)
      if (exited === undefined && entry.namespace !== undefined) {
        await systemctl('exit')
        await waitFor(async () => exited !== undefined, {timeoutMs: stopOptions.exitTimeoutMs ?? 15_000, what: 'the user manager to exit'}).catch(() => undefined)
      }

      // Whatever survived: processes in the namespace or the cgroups, and descendants that left both.
      for (let round = 0; round < 50; round++) {
        const left = entry.namespace === undefined ? [] : pidsInMountNamespace(entry.namespace)
        left.push(...pidsInCgroups(entry.cgroups))
        for (const [pid, start] of tree) if (startTime(pid) === start && isRunning(pid)) left.push(pid)
        if (exited === undefined) left.push(anchorPid)
        if (left.length === 0) break
        for (const pid of left) kill(pid, 'SIGKILL')
        await new Promise((resolve) => setTimeout(resolve, 100))
      }

      child.stdin!.destroy()
      await closed
      // A cgroup stays busy for a moment after its last process is reaped.
      await waitFor(async () => removeCgroups(entry.cgroups), {timeoutMs: 5000, intervalMs: 50, what: 'the manager’s cgroups to be removable'}).catch(
        () => undefined,
      )
      live.delete(entry)
      if (ownsHome) await rm(home, {recursive: true, force: true})
    })()
    return stopping
  }

  const failStart = async (reason: string): Promise<never> => {
    await stop()
    throw new Error(`systemd user manager did not start: ${reason}\n--- captured output ---\n${cleanLog(raw)}`)
  }

  try {
    // The PID file only exists on the namespace's private /run, so once it is readable through the
    // anchor's root, the namespace is set up and nsenter will land in it (not in the host's).
    managerPid = await waitFor(
      async () => {
        if (exited !== undefined) throw new Error(`namespace setup exited (${exited})`)
        const text = readProc(anchorPid, `root${MANAGER_PID_FILE}`)
        return text !== undefined && /^\d+\s*$/.test(text) ? Number(text) : undefined
      },
      {timeoutMs, intervalMs: 25, what: 'the mount namespace and the manager process'},
    )
    const journaldText = readProc(anchorPid, `root${JOURNALD_PID_FILE}`)
    const journaldPid = journaldText !== undefined && /^\d+\s*$/.test(journaldText) ? Number(journaldText) : 0
    const namespace = mountNamespace(anchorPid)
    if (namespace === undefined || namespace === hostNamespace) return await failStart('the anchor process is not in a private mount namespace')
    entry.namespace = namespace

    let state = ''
    await waitFor(
      async () => {
        if (exited !== undefined) throw new Error(`manager exited (${exited})`)
        const result = await systemctl('is-system-running')
        state = result.stdout.trim() || result.stderr.trim()
        return state === 'running' || state === 'degraded'
      },
      {timeoutMs: Math.max(timeoutMs - (Date.now() - began), 1000), intervalMs: 50, what: 'systemctl --user is-system-running to say running'},
    ).catch((error: Error) => failStart(`${error.message}; last state: ${state}`))
    const startMs = Date.now() - began

    return {
      home,
      env,
      managerPid,
      anchorPid,
      namespace,
      journaldPid,
      cgroups: entry.cgroups,
      startMs,
      run,
      spawn: spawnIn,
      systemctl,
      show,
      mainPid,
      journal,
      log: () => cleanLog(raw) + wholeJournal(),
      stop,
    }
  } catch (error) {
    if (stopping === undefined) return failStart((error as Error).message)
    throw error
  }
}

/** When the harness cannot run: the suite fails under `CI=true`, and is skipped saying why elsewhere. */
export function harnessUnavailable(context: Mocha.Context, title: string, reason: string): never {
  if (process.env.CI === 'true') throw new Error(`systemd harness unavailable under CI: ${reason}`)
  console.log(`      skipping "${title}": systemd harness unavailable: ${reason}`)
  return context.skip()
}

/**
 * A mocha `describe` with one user manager for the whole suite: started in `before`, stopped in
 * `after`, its log printed when a test fails. When the harness cannot start, the suite fails under
 * `CI=true` and is skipped (with the reason printed) elsewhere.
 */
export function describeSystemd(title: string, fn: (this: Mocha.Suite, ctx: () => UserManager) => void): void {
  describe(title, function () {
    this.timeout(120_000)
    let manager: UserManager | undefined

    before(async function () {
      try {
        manager = await startUserManager()
      } catch (error) {
        harnessUnavailable(this, title, (error as Error).message)
      }
    })

    afterEach(function () {
      if (this.currentTest?.state === 'failed' && manager !== undefined) {
        console.log(`----- systemd user manager log (${title}) -----\n${manager.log()}\n----- end of log -----`)
      }
    })

    after(async () => {
      await manager?.stop()
      manager = undefined
    })

    fn.call(this, () => {
      if (manager === undefined) throw new Error('the systemd user manager is not running')
      return manager
    })
  })
}
