import {chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

/** How the fake answers; written to `config.json` next to the script, read on every call. */
export interface FakeLaunchctlConfig {
  /** Subcommands the fake does not know, as launchctl before macOS 10.10 (no bootstrap, bootout, print, enable). */
  unsupported?: string[]
  /** How an unknown subcommand is refused: `usage` prints usage and exits 64; `unknown` prints a one-line error and exits 1. */
  unsupportedStyle?: 'usage' | 'unknown'
  /** The state `print` reports for a loaded job (`running` by default). */
  state?: string
  /** The PID reported for a running job. */
  pid?: number
  /** Makes `bootstrap` fail as launchd does for a broken plist. */
  failBootstrap?: boolean
}

// A stand-in for launchctl: records each argument vector as one JSON line and
// keeps which labels are loaded in loaded.json, answering as launchctl does.
const SCRIPT = String.raw`
const fs = require('node:fs')
const path = require('node:path')
const dir = __dirname
const args = process.argv.slice(2)
fs.appendFileSync(path.join(dir, 'calls.jsonl'), JSON.stringify(args) + '\n')
const config = fs.existsSync(path.join(dir, 'config.json')) ? JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) : {}
const loadedFile = path.join(dir, 'loaded.json')
const loaded = fs.existsSync(loadedFile) ? JSON.parse(fs.readFileSync(loadedFile, 'utf8')) : {}
const save = () => fs.writeFileSync(loadedFile, JSON.stringify(loaded))
const finish = (code, out, err) => {
  if (out) process.stdout.write(out)
  if (err) process.stderr.write(err)
  process.exit(code)
}
const labelOf = (file) => {
  const match = /<key>Label<\/key>\s*<string>([^<]*)<\/string>/.exec(fs.readFileSync(file, 'utf8'))
  if (!match) finish(1, '', file + ': Invalid property list\n')
  return match[1]
}
const [sub, ...rest] = args
if ((config.unsupported || []).includes(sub)) {
  if (config.unsupportedStyle === 'unknown') finish(1, '', 'launchctl: unknown subcommand "' + sub + '"\n')
  finish(64, '', 'Unrecognized subcommand: ' + sub + '\nUsage: launchctl <subcommand> ... | help [subcommand]\n')
}
const target = (spec) => spec.split('/').slice(2).join('/')
const running = (config.state || 'running') === 'running'
const pid = config.pid || 1234
switch (sub) {
  case 'print': {
    const label = target(rest[0])
    if (!loaded[label]) finish(113, '', 'Could not find service "' + label + '" in domain for user gui: 501\n')
    const lines = [
      rest[0] + ' = {',
      '\tactive count = ' + (running ? 1 : 0),
      '\tpath = ' + loaded[label],
      '\ttype = LaunchAgent',
      '\tstate = ' + (config.state || 'running'),
      '',
      '\tprogram = /usr/local/bin/amp-distro',
      '\targuments = {',
      '\t\t/usr/local/bin/amp-distro',
      '\t\tserve',
      '\t}',
      '',
      '\tenvironment = {',
      '\t\tPATH => /usr/bin:/bin',
      '\t\tLAUNCHD_JOB_NAME => ' + label,
      '\t}',
      '',
      '\tdomain = gui/501 [100012]',
      '\tasid = 100012',
      '\truns = 1',
      ...(running ? ['\tpid = ' + pid] : []),
      '\timmediate reason = speculative',
      '\tlast exit code = ' + (running ? '(never exited)' : '1'),
      '',
      '\tevent triggers = {',
      '\t\tcom.amplifier.distro.268435461 => {',
      '\t\t\tkeepalive = 1',
      '\t\t\tstate = 0',
      '\t\t\tpid = 99',
      '\t\t}',
      '\t}',
      '',
      '\tproperties = keepalive | runatload | inferred program',
      '}',
    ]
    finish(0, lines.join('\n') + '\n')
  }
  case 'list': {
    const label = rest[0]
    if (!loaded[label]) finish(113, '', 'Could not find service "' + label + '" in domain for port\n')
    finish(0, ['{', '\t"LimitLoadToSessionType" = "Aqua";', '\t"Label" = "' + label + '";', '\t"OnDemand" = false;', '\t"LastExitStatus" = 0;', ...(running ? ['\t"PID" = ' + pid + ';'] : []), '\t"Program" = "/usr/local/bin/amp-distro";', '};', ''].join('\n'))
  }
  case 'enable':
    finish(0)
  case 'bootstrap': {
    if (config.failBootstrap) finish(5, '', 'Bootstrap failed: 5: Input/output error\n')
    const label = labelOf(rest[1])
    if (loaded[label]) finish(5, '', 'Bootstrap failed: 5: Input/output error\n')
    loaded[label] = rest[1]
    save()
    finish(0)
  }
  case 'load': {
    const file = rest[rest.length - 1]
    const label = labelOf(file)
    if (loaded[label]) finish(0, '', file + ': service already loaded\n')
    loaded[label] = file
    save()
    finish(0)
  }
  case 'bootout': {
    const label = target(rest[0])
    if (!loaded[label]) finish(3, '', 'Boot-out failed: 3: No such process\n')
    delete loaded[label]
    save()
    finish(0)
  }
  case 'unload': {
    const label = labelOf(rest[rest.length - 1])
    if (!loaded[label]) finish(0, '', 'Could not find specified service\n')
    delete loaded[label]
    save()
    finish(0)
  }
  case 'remove': {
    if (!loaded[rest[0]]) finish(3, '', 'launchctl remove error: No such process\n')
    delete loaded[rest[0]]
    save()
    finish(0)
  }
  default:
    finish(64, '', 'Unrecognized subcommand: ' + sub + '\n')
}
`

/** A fake `launchctl` in its own temporary folder, meant to go first on a PATH. */
export interface FakeLaunchctl {
  dir: string
  /** Every argument vector the fake was called with, in order. */
  calls(): string[][]
  clearCalls(): void
  configure(config: FakeLaunchctlConfig): void
  /** Labels the fake holds as loaded, with the plist each came from. */
  loaded(): Record<string, string>
  setLoaded(loaded: Record<string, string>): void
  cleanup(): void
}

/** Writes the fake launchctl script (run by this Node, whatever PATH says) into a new temporary folder. */
export function createFakeLaunchctl(): FakeLaunchctl {
  const dir = mkdtempSync(join(tmpdir(), 'fake-launchctl-'))
  const script = join(dir, 'launchctl')
  writeFileSync(script, `#!${process.execPath}\n${SCRIPT}`)
  chmodSync(script, 0o755)
  const callsFile = join(dir, 'calls.jsonl')
  const loadedFile = join(dir, 'loaded.json')
  return {
    dir,
    calls: () =>
      existsSync(callsFile)
        ? readFileSync(callsFile, 'utf8')
            .split('\n')
            .filter((line) => line.length > 0)
            .map((line) => JSON.parse(line) as string[])
        : [],
    clearCalls: () => rmSync(callsFile, {force: true}),
    configure: (config) => writeFileSync(join(dir, 'config.json'), JSON.stringify(config)),
    loaded: () => (existsSync(loadedFile) ? (JSON.parse(readFileSync(loadedFile, 'utf8')) as Record<string, string>) : {}),
    setLoaded: (loaded) => writeFileSync(loadedFile, JSON.stringify(loaded)),
    cleanup: () => rmSync(dir, {recursive: true, force: true}),
  }
}
