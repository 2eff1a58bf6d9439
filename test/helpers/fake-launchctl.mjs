// A stand-in for macOS's launchctl, for tests on machines without launchd.
//
// Run as `node fake-launchctl.mjs <state dir> <subcommand> …` (the wrapper
// that createFakeLaunchctl writes does that), it answers one launchctl call
// from the state in <state dir> and exits as launchctl would. With
// `--supervise <label>` in place of a subcommand it plays launchd for one
// loaded job: it starts the job's program as a real process, records its PID
// and its raw wait status, restarts it as its KeepAlive says, and tears it
// down on bootout. Health, PIDs and signals are therefore real.
//
// Every behaviour below that copies the real launchctl cites where the fact
// comes from:
// - [launchctl(1)]: Apple's man page, launchctl(1), macOS 13-15.
// - [launchd.plist(5)]: Apple's man page, launchd.plist(5).
// - [brew system.rb] / [brew cli.rb]: Homebrew/brew,
//   Library/Homebrew/services/system.rb and cli.rb (`brew services`).
// - [openclaw]: openclaw/openclaw, src/daemon/launchd-runtime.ts and
//   launchd-plist.ts, and the pull requests openclaw/openclaw#8642 and #13795.
// - [issues]: reports of these answers by other tools that drive
//   LaunchAgents (lima-vm/lima, Mic92/sops-nix#966, duh17/oppi#31 and #38,
//   rjwalters/loom#4130, Homebrew/legacy-homebrew#33259).
//
// State files (all under the state dir):
// - config.json: how the fake answers (see FakeLaunchctlConfig in fake-launchctl.ts);
// - calls.jsonl: every argument vector, one JSON array a line;
// - jobs/<label>.json: a loaded job (a job is loaded while its file exists);
// - teardown/<label>: until when a booted-out label still refuses bootstrap;
// - disabled/<label>: a `launchctl disable`;
// - counters.json: how many refusals asked for in config are left.

import {spawn} from 'node:child_process'
import {accessSync, appendFileSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {constants as osConstants} from 'node:os'
import {join} from 'node:path'
import plist from 'plist'

const [dir, sub, ...args] = process.argv.slice(2)
const config = readJson(join(dir, 'config.json'), {})

// [launchd.plist(5)]: "ExitTimeOut <integer> The amount of time launchd waits between sending the
// SIGTERM signal and before sending a SIGKILL signal when the job is to be stopped." Real `print`
// output shows `exit timeout = 5`, so 5 s is the default on current macOS (the man page's 20 s is old).
const DEFAULT_EXIT_TIMEOUT_S = 5
// [launchd.plist(5)]: ThrottleInterval defaults to 10 s.
const DEFAULT_THROTTLE_S = 10
// [launchd.plist(5)]: the PATH launchd gives a job whose plist sets none.
const LAUNCHD_PATH = '/usr/bin:/bin:/usr/sbin:/sbin'
// sysexits(3): EX_CONFIG. launchd reports it as the last exit code of a job it could not spawn.
const EX_CONFIG = 78

function readJson(file, fallback) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    return fallback
  }
}

/** Writes a file whole or not at all: readers in other processes never see half of it. */
function writeJson(file, value) {
  const temporary = `${file}.${process.pid}.tmp`
  writeFileSync(temporary, JSON.stringify(value))
  renameSync(temporary, file)
}

const jobFile = (label) => join(dir, 'jobs', `${label}.json`)
const readJob = (label) => readJson(jobFile(label), undefined)

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Ends a call as launchctl does. */
function answer(code, stderr = [], stdout = '') {
  if (stdout) process.stdout.write(stdout)
  if (stderr.length > 0) process.stderr.write(`${stderr.join('\n')}\n`)
  process.exitCode = code
}

// [issues], [launchctl(1) on macOS 13+]: a failed request prints its own line, `<Verb> failed: N: text`,
// and then a second, generic line. Tools that show the last line show only the generic one.
const TRY_AS_ROOT = 'Try re-running the command as root for richer errors.'
function failed(verb, code, text) {
  answer(code, [`${verb} failed: ${code}: ${text}`, TRY_AS_ROOT])
}

/** Takes one from a refusal count in config (`busy`, `inProgress.<sub>`), kept in counters.json. */
function takeOne(key, initial) {
  const file = join(dir, 'counters.json')
  const counters = readJson(file, {})
  const left = counters[key] ?? initial ?? 0
  if (left <= 0) return false
  counters[key] = left - 1
  writeJson(file, counters)
  return true
}

/** `gui/501/label` → {domain: 'gui', uid: '501', label}; `gui/501` → no label. */
function parseTarget(target = '') {
  const [domain, uid, ...rest] = target.split('/')
  return {domain, uid, label: rest.join('/') || undefined}
}

/**
 * [launchctl(1)], [issues], [openclaw]: without a GUI login session (over SSH, on a headless
 * Mac, under sudo) there is no gui/<uid> domain: `print` answers 112, `Could not find domain
 * for user gui: <uid>`, and `bootstrap` answers 125, `Domain does not support specified
 * action`. The user/<uid> domain exists after any login [brew system.rb], [Mic92/sops-nix#966].
 */
function domainMissing(target) {
  return config.noGuiDomain === true && target.domain === 'gui'
}

function noDomain(target) {
  answer(112, [`Could not find domain for user gui: ${target.uid}`])
}

function plistValue(file) {
  return plist.parse(readFileSync(file, 'utf8'))
}

function describeStatus(status) {
  // A raw wait status, as `launchctl list` shows it: exit code in the second byte, signal in the low bits.
  if (status === undefined) return {exit: '(never exited)'}
  const signal = status & 0x7f
  if (signal) return {signal}
  const code = status >> 8
  return {exit: code === EX_CONFIG ? `${code}: EX_CONFIG` : String(code)}
}

const SIGNAL_NAMES = {9: 'Killed: 9', 15: 'Terminated: 15', 2: 'Interrupt: 2', 1: 'Hangup: 1'}

/**
 * [launchctl(1)]: `print`'s output "is NOT API"; this copies the layout seen on macOS 13-15:
 * top-level keys indented by one tab, nested blocks by two; `pid` only while the job runs;
 * `last exit code` a number, `78: EX_CONFIG`, or `(never exited)`; `job state = spawn failed`
 * when launchd could not start the program.
 */
function printJob(target, job) {
  const env = {...job.environment}
  const lines = [`${target.domain}/${target.uid}/${job.label} = {`, '\tactive count = 1', `\tpath = ${job.plist}`, '\ttype = LaunchAgent', `\tstate = ${job.state}`, '']
  lines.push(`\tprogram = ${job.program[0] ?? ''}`, '\targuments = {', ...job.program.map((arg) => `\t\t${arg}`), '\t}', '')
  if (job.workingDirectory) lines.push(`\tworking directory = ${job.workingDirectory}`, '')
  if (job.stdout) lines.push(`\tstdout path = ${job.stdout}`)
  if (job.stderr) lines.push(`\tstderr path = ${job.stderr}`)
  lines.push('\tdefault environment = {', `\t\tPATH => ${LAUNCHD_PATH}`, '\t}', '')
  lines.push('\tenvironment = {', ...Object.entries(env).map(([key, value]) => `\t\t${key} => ${value}`), `\t\tXPC_SERVICE_NAME => ${job.label}`, '\t}', '')
  lines.push(`\tdomain = ${target.domain}/${target.uid} [100012]`, '\tasid = 100012', `\tminimum runtime = ${job.throttleS}`, `\texit timeout = ${job.exitTimeoutS}`, `\truns = ${job.runs}`)
  if (job.pid !== undefined) lines.push(`\tpid = ${job.pid}`)
  const last = describeStatus(job.lastStatus)
  if (last.signal) lines.push(`\tlast terminating signal = ${SIGNAL_NAMES[last.signal] ?? `Signal ${last.signal}`}`)
  else lines.push(`\tlast exit code = ${last.exit}`)
  if (job.jobState) lines.push(`\tjob state = ${job.jobState}`)
  lines.push('', '\tevent triggers = {', `\t\t${job.label}.268435461 => {`, '\t\t\tkeepalive = 1', '\t\t\tstate = 0', '\t\t\tpid = 99', '\t\t}', '\t}', '')
  lines.push('\tproperties = keepalive | runatload | inferred program', '}', '')
  return lines.join('\n')
}

/** A job as the plist defines it, before launchd has run it. */
function jobFromPlist(file, domain) {
  const value = plistValue(file)
  const env = value.EnvironmentVariables && typeof value.EnvironmentVariables === 'object' ? value.EnvironmentVariables : {}
  return {
    label: value.Label,
    plist: file,
    domain,
    program: Array.isArray(value.ProgramArguments) ? value.ProgramArguments : [],
    workingDirectory: value.WorkingDirectory,
    stdout: value.StandardOutPath,
    stderr: value.StandardErrorPath,
    environment: env,
    keepAlive: value.KeepAlive ?? false,
    throttleS: value.ThrottleInterval ?? DEFAULT_THROTTLE_S,
    exitTimeoutS: value.ExitTimeOut ?? DEFAULT_EXIT_TIMEOUT_S,
    state: 'spawn scheduled',
    runs: 0,
  }
}

/** Waits (bounded) until `test` holds for the job's file; answers the last state read. */
async function waitFor(label, test, ms = 10_000) {
  const deadline = Date.now() + ms
  for (;;) {
    const job = readJob(label)
    if (test(job) || Date.now() >= deadline) return job
    await sleep(10)
  }
}

// ---------------------------------------------------------------------------------------------
// The subcommands.

async function bootstrap(domainArg, file, verb = 'Bootstrap') {
  const target = parseTarget(domainArg)
  if (domainMissing(target)) return failed(verb, 125, 'Domain does not support specified action')
  if (config.failBootstrap) return failed(verb, 5, 'Input/output error')
  let job
  try {
    job = jobFromPlist(file, `${target.domain}/${target.uid}`)
  } catch {
    return failed(verb, 5, 'Input/output error')
  }

  if (takeOne('busy', config.busy)) return failed(verb, 37, 'Operation already in progress')
  if (existsSync(join(dir, 'disabled', job.label))) return failed(verb, 119, 'Service is disabled')
  // [launchctl(1)], [openclaw] (isLaunchctlBootstrapPendingTeardown): a loaded label answers 5, and so does
  // one launchd is still tearing down after a bootout, for a few seconds after print stops finding it.
  const teardown = Number(readJson(join(dir, 'teardown', job.label), 0))
  if (readJob(job.label) || Date.now() < teardown) return failed(verb, 5, 'Input/output error')
  mkdirSync(join(dir, 'jobs'), {recursive: true})
  if (!config.spawn) {
    writeJson(jobFile(job.label), {...job, static: true})
    return answer(0)
  }

  writeJson(jobFile(job.label), job)
  const supervisor = spawn(process.execPath, [process.argv[1], dir, '--supervise', job.label], {detached: true, stdio: 'ignore'})
  supervisor.unref()
  // RunAtLoad: the job is started (or fails to start) before bootstrap returns.
  await waitFor(job.label, (current) => current === undefined || current.runs > 0 || current.jobState === 'spawn failed')
  return answer(0)
}

/** Fills in what `print` and `list` report for a job, in static mode from config. */
function observed(job) {
  if (!job.static) return job
  if (job.exited) return {...job, state: 'not running', runs: 1, lastStatus: 0}
  const state = config.state ?? 'running'
  return {
    ...job,
    state,
    runs: 1,
    ...(state === 'running' ? {pid: config.pid ?? 1234} : {lastStatus: (config.lastExitCode ?? 1) << 8}),
  }
}

function print(targetArg) {
  const target = parseTarget(targetArg)
  if (domainMissing(target)) return noDomain(target)
  let job = target.label && readJob(target.label)
  if (job?.static && job.drain !== undefined) {
    if (job.drain <= 1) {
      rmSync(jobFile(target.label))
      job = undefined
    } else {
      writeJson(jobFile(target.label), {...job, drain: job.drain - 1})
    }
  }

  // [launchctl(1)]: an unknown service answers 113 after a bare `Bad request.`.
  if (!job) return answer(113, ['Bad request.', `Could not find service "${target.label}" in domain for user gui: ${target.uid}`])
  return answer(0, [], printJob(target, observed(job)))
}

/** [launchctl(1)]: the legacy `list <label>` prints a dictionary; LastExitStatus is the raw wait status (19968 = exit 78, 9 = SIGKILL). */
function list(label) {
  const job = label && readJob(label)
  if (!job) return answer(113, [`Could not find service "${label}" in domain for port`])
  const seen = observed(job)
  const lines = ['{', '\t"LimitLoadToSessionType" = "Aqua";', `\t"Label" = "${label}";`, '\t"OnDemand" = false;', `\t"LastExitStatus" = ${seen.lastStatus ?? 0};`]
  if (seen.pid !== undefined) lines.push(`\t"PID" = ${seen.pid};`)
  lines.push(`\t"Program" = "${seen.program[0] ?? ''}";`, '};', '')
  return answer(0, [], lines.join('\n'))
}

/**
 * [launchctl(1)], [brew cli.rb]: `bootout` returns at once; launchd then sends SIGTERM, and
 * SIGKILL after ExitTimeOut. Meanwhile `print` still finds the job, `state = SIGTERMed`.
 * Homebrew's stop loop retries a bootout that answers 36 (`Operation now in progress`).
 */
async function bootout(targetArg, verb = 'Boot-out') {
  const target = parseTarget(targetArg)
  if (domainMissing(target)) return noDomain(target)
  if (takeOne(`inProgress.bootout`, config.inProgress?.bootout)) return failed(verb, 36, 'Operation now in progress')
  const job = target.label && readJob(target.label)
  if (!job || job.stopping || (job.static && job.drain !== undefined)) {
    // [launchctl(1)]: an unknown label answers 3 (`No such process`) on current macOS, 113 on some releases.
    return config.missing === 113 ? failed(verb, 113, 'Could not find specified service') : failed(verb, 3, 'No such process')
  }

  if (job.static) {
    if (config.drain > 0) writeJson(jobFile(target.label), {...job, drain: config.drain})
    else rmSync(jobFile(target.label))
    return answer(0)
  }

  process.kill(job.supervisor, 'SIGUSR1')
  await waitFor(target.label, (current) => current === undefined || current.stopping === true, 2000)
  return answer(0)
}

/** [launchctl(1)]: `kickstart` starts a loaded job; `-k` first kills a running instance, with SIGKILL (LastExitStatus 9 afterwards). */
async function kickstart(rest) {
  const kill = rest.includes('-k')
  const target = parseTarget(rest.at(-1))
  if (domainMissing(target)) return noDomain(target)
  const job = target.label && readJob(target.label)
  if (!job || job.stopping || (job.static && job.drain !== undefined)) {
    if (config.missing === 3) return answer(3, ['Could not kickstart service: 3: No such process'])
    return answer(113, [`Could not find service "${target.label}" in domain for user gui: ${target.uid}`])
  }

  if (takeOne('busy', config.busy)) return answer(37, [`Could not kickstart service "${target.label}": 37: Operation already in progress`])
  if (takeOne('inProgress.kickstart', config.inProgress?.kickstart)) return answer(36, [`Could not kickstart service "${target.label}": 36: Operation now in progress`])
  if (job.static) {
    if (job.exited) writeJson(jobFile(target.label), {...job, exited: undefined})
    return answer(0)
  }

  if (job.pid !== undefined && !kill) return answer(0)
  const runs = job.runs
  if (job.pid !== undefined) {
    try {
      process.kill(job.pid, 'SIGKILL')
    } catch {
      // It exited meanwhile: the supervisor records that and starts it again below.
    }
  }

  process.kill(job.supervisor, 'SIGUSR2')
  await waitFor(target.label, (current) => current === undefined || (current.runs > runs && current.pid !== undefined) || current.jobState === 'spawn failed')
  return answer(0)
}

/** [launchctl(1)]: `kill <signal> <service-target>` sends a signal to the job's running process; launchd does not follow it with SIGKILL. */
function killJob(signalArg, targetArg) {
  const target = parseTarget(targetArg)
  if (domainMissing(target)) return noDomain(target)
  const job = target.label && readJob(target.label)
  if (!job) return answer(113, [`Could not find service "${target.label}" in domain for user gui: ${target.uid}`])
  if (job.static) {
    // In static mode the job's process ignores the signal, unless config.exitsOnSignal: then it exits
    // cleanly (not running, last exit 0) and is not started again (KeepAlive {SuccessfulExit: false}) until a kickstart.
    if (!config.exitsOnSignal) return answer(0)
    if (job.exited) return answer(3, ['Could not kill service: 3: No such process'])
    writeJson(jobFile(target.label), {...job, exited: true})
    return answer(0)
  }

  if (job.pid === undefined) return answer(3, ['Could not kill service: 3: No such process'])
  const signal = /^\d+$/.test(signalArg) ? Number(signalArg) : signalArg.startsWith('SIG') ? signalArg : `SIG${signalArg}`
  try {
    process.kill(job.pid, signal)
  } catch {
    return answer(3, ['Could not kill service: 3: No such process'])
  }

  return answer(0)
}

function enable(targetArg, on) {
  const target = parseTarget(targetArg)
  mkdirSync(join(dir, 'disabled'), {recursive: true})
  // [launchctl(1)]: `disable` persists; `enable` clears it, after which bootstrap works again (119 before).
  if (on) rmSync(join(dir, 'disabled', target.label), {force: true})
  else writeFileSync(join(dir, 'disabled', target.label), '')
  return answer(0)
}

/** [launchctl(1)]: the legacy `load` and `unload` "only return a non-zero exit code due to improper usage". */
async function legacy(verb, file) {
  let label
  try {
    label = plistValue(file).Label
  } catch {
    return answer(0, [`${file}: Invalid property list`])
  }

  if (verb === 'load') {
    if (readJob(label)) return answer(0, [`${file}: service already loaded`])
    const saved = process.exitCode
    await bootstrap(`gui/${process.getuid?.() ?? 501}`, file, 'Load')
    process.exitCode = saved
    return
  }

  if (!readJob(label)) return answer(0, ['Could not find specified service'])
  await bootout(`gui/0/${label}`, 'Unload')
  process.exitCode = 0
}

function remove(label) {
  const job = readJob(label)
  if (!job) return answer(3, ['launchctl remove error: No such process'])
  if (job.static) rmSync(jobFile(label))
  else process.kill(job.supervisor, 'SIGUSR1')
  return answer(0)
}

// ---------------------------------------------------------------------------------------------
// The supervisor: launchd's part for one loaded job.

async function supervise(label) {
  let job = readJob(label)
  let child
  let kick = false
  let wake = () => {}
  let killTimer
  const save = (change) => {
    job = {...job, ...change}
    writeJson(jobFile(label), job)
  }

  save({supervisor: process.pid})
  // Signal listeners alone do not keep Node running; launchd stays for as long as the job is loaded.
  const keepAlive = setInterval(() => {}, 60_000)
  // SIGUSR1: bootout. SIGUSR2: kickstart. SIGTERM (the test cleaning up): kill everything now.
  process.on('SIGUSR1', () => {
    save({stopping: true, state: 'SIGTERMed'})
    if (child) {
      child.kill('SIGTERM')
      const exitTimeoutMs = config.exitTimeoutMs ?? job.exitTimeoutS * 1000
      killTimer = setTimeout(() => child?.kill('SIGKILL'), exitTimeoutMs)
    }

    wake()
  })
  process.on('SIGUSR2', () => {
    kick = true
    wake()
  })
  process.on('SIGTERM', () => {
    child?.kill('SIGKILL')
    rmSync(jobFile(label), {force: true})
    process.exit(0)
  })

  const pause = (ms) =>
    new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(resolve, ms)
      wake = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  const throttleMs = () => config.throttleMs ?? job.throttleS * 1000

  while (!job.stopping) {
    kick = false
    const started = Date.now()
    const status = await runOnce(job, (spawned) => {
      child = spawned
      save({pid: spawned.pid, state: job.stopping ? 'SIGTERMed' : 'running', runs: job.runs + 1, jobState: undefined})
      // A bootout that came while the program was being started.
      if (job.stopping) spawned.kill('SIGTERM')
    })
    child = undefined
    if (status.spawnFailed) {
      // [launchd.plist(5)], [issues]: a StandardOutPath or StandardErrorPath that cannot be opened, or a
      // program that is not there, means no process at all; print shows `job state = spawn failed` and
      // `last exit code = 78: EX_CONFIG`, and launchd tries again every ThrottleInterval.
      save({pid: undefined, state: 'spawn scheduled', jobState: 'spawn failed', lastStatus: EX_CONFIG << 8})
      if (!job.stopping && !kick) await pause(throttleMs())
      continue
    }

    save({pid: undefined, state: job.stopping ? 'SIGTERMed' : 'not running', lastStatus: status.wait})
    if (job.stopping) break
    // [launchd.plist(5)]: KeepAlive true restarts always; {SuccessfulExit: false} restarts after a
    // non-zero exit or a signal. A job that ran shorter than ThrottleInterval waits out the rest of it.
    const again = job.keepAlive === true || (typeof job.keepAlive === 'object' && job.keepAlive.SuccessfulExit === false && status.wait !== 0)
    if (kick) continue
    await (again ? pause(Math.max(0, throttleMs() - (Date.now() - started))) : pause())
  }

  clearTimeout(killTimer)
  clearInterval(keepAlive)
  rmSync(jobFile(label), {force: true})
  mkdirSync(join(dir, 'teardown'), {recursive: true})
  writeJson(join(dir, 'teardown', label), Date.now() + (config.teardownMs ?? 2000))
  process.exit(0)
}

/** Starts the job's program once and resolves to its raw wait status, or to a spawn failure. */
function runOnce(job, started) {
  let out
  let err
  try {
    accessSync(job.program[0], constants.X_OK)
    out = openSync(job.stdout ?? '/dev/null', 'a')
    err = openSync(job.stderr ?? '/dev/null', 'a')
  } catch {
    if (out !== undefined) closeSync(out)
    return Promise.resolve({spawnFailed: true})
  }

  // [launchd.plist(5)], [openclaw] (readCorrespondingLaunchAgentCommand): launchd sets XPC_SERVICE_NAME
  // to the label in every job's environment, and HOME to the user's home; PATH is the plist's, or launchd's own.
  const env = {HOME: config.home ?? job.workingDirectory ?? '/', PATH: LAUNCHD_PATH, ...job.environment, XPC_SERVICE_NAME: job.label}
  const child = spawn(job.program[0], job.program.slice(1), {cwd: job.workingDirectory ?? '/', env, stdio: ['ignore', out, err], detached: true})
  closeSync(out)
  closeSync(err)
  return new Promise((resolve) => {
    child.once('error', () => resolve({spawnFailed: true}))
    child.once('spawn', () => started(child))
    child.once('exit', (code, signal) => {
      const number = signal ? (osConstants.signals[signal] ?? 9) : 0
      resolve({wait: signal ? number : (code ?? 0) << 8})
    })
  })
}

// ---------------------------------------------------------------------------------------------

async function main() {
  if (sub === '--supervise') return supervise(args[0])
  appendFileSync(join(dir, 'calls.jsonl'), `${JSON.stringify([sub, ...args])}\n`)
  if ((config.unsupported ?? []).includes(sub)) {
    if (config.unsupportedStyle === 'unknown') return answer(1, [`launchctl: unknown subcommand "${sub}"`])
    // [launchctl(1)]: 64 is the general usage error.
    return answer(64, [`Unrecognized subcommand: ${sub}`, 'Usage: launchctl <subcommand> ... | help [subcommand]'])
  }

  // A launchctl that does not answer: [openclaw] saw calls hang for more than 15 s.
  if (config.hang === sub) {
    setInterval(() => {}, 60_000)
    return
  }

  switch (sub) {
    case 'print': {
      return print(args[0])
    }

    case 'list': {
      return list(args[0])
    }

    case 'bootstrap': {
      return bootstrap(args[0], args[1])
    }

    case 'bootout': {
      return bootout(args[0])
    }

    case 'kickstart': {
      return kickstart(args)
    }

    case 'kill': {
      return killJob(args[0], args[1])
    }

    case 'enable':
    case 'disable': {
      return enable(args[0], sub === 'enable')
    }

    case 'load':
    case 'unload': {
      return legacy(sub, args.at(-1))
    }

    case 'remove': {
      return remove(args[0])
    }

    default: {
      return answer(64, [`Unrecognized subcommand: ${sub}`])
    }
  }
}

await main()
