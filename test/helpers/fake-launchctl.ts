import {chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execCommand, streamLines} from '../../src/lib/process/exec.js'
import type {ServiceContext} from '../../src/lib/service/types.js'

/** How the fake answers; written to `config.sh` next to the script, read on every call. */
export interface FakeLaunchctlConfig {
  /** Subcommands the fake does not know, as launchctl before macOS 10.10 (no bootstrap, bootout, print, enable). */
  unsupported?: string[]
  /** How an unknown subcommand is refused: `usage` prints usage and exits 64; `unknown` prints a one-line error and exits 1. */
  unsupportedStyle?: 'usage' | 'unknown'
  /** The state `print` reports for a loaded job (`running` by default). */
  state?: string
  /** The PID reported for a running job. */
  pid?: number
  /** The last exit code `print` reports for a loaded job that is not running (1 by default). */
  lastExitCode?: number
  /** Makes `bootstrap` fail as launchd does for a broken plist. */
  failBootstrap?: boolean
  /**
   * How many `print` calls a booted-out job stays visible for, as launchd
   * keeps a job while it tears it down; `bootstrap` fails with 5 meanwhile.
   */
  drain?: number
  /** How many bootstrap or kickstart requests answer 37 (`Operation already in progress`) before one succeeds. */
  busy?: number
  /** How kickstart and bootout answer for a job launchd does not hold: 113 (`Could not find …`) or 3 (`No such process`). */
  missing?: 113 | 3
  /**
   * Runs the jobs for real: bootstrap and kickstart start the plist's
   * ProgramArguments in its WorkingDirectory, with its PATH and
   * LAUNCHD_JOB_NAME plus HOME and XPC_SERVICE_NAME as launchd sets them,
   * output appended to its StandardOutPath and StandardErrorPath. `print`
   * then reports the process's real PID while it runs, and its exit code
   * once it has exited; `kickstart -k` and `bootout` stop it (SIGTERM, then
   * SIGKILL after 5 s).
   */
  spawn?: boolean
}

// A stand-in for launchctl, in POSIX sh so each call starts in milliseconds: it
// records each argument vector as one JSON line in calls.jsonl, keeps each
// loaded label as a file in loaded/ holding its plist path, and answers as
// launchctl does. config.sh (written by configure) sets how it answers. In
// spawn mode, pids/<label> holds the job's PID and exits/<label> its exit code.
// Shell parameter expansions start with what a template literal reads as a placeholder.
const BRACE = '${'
const SCRIPT = String.raw`#!/bin/sh
dir=${BRACE}0%/*}
json() {
  case "$1" in
    *[\\\"]*) printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' ;;
    *) printf '%s' "$1" ;;
  esac
}
line='['
sep=''
for arg in "$@"; do
  line="$line$sep\"$(json "$arg")\""
  sep=','
done
printf '%s]\n' "$line" >> "$dir/calls.jsonl"
UNSUPPORTED='' UNSUPPORTED_STYLE=usage STATE=running PID=1234 LAST_EXIT=1 FAIL_BOOTSTRAP='' DRAIN=0 MISSING=113 SPAWN=''
[ -f "$dir/config.sh" ] && . "$dir/config.sh"
sub=$1
shift
case " $UNSUPPORTED " in
  *" $sub "*)
    if [ "$UNSUPPORTED_STYLE" = unknown ]; then
      echo "launchctl: unknown subcommand \"$sub\"" >&2
      exit 1
    fi
    printf 'Unrecognized subcommand: %s\nUsage: launchctl <subcommand> ... | help [subcommand]\n' "$sub" >&2
    exit 64
    ;;
esac
unxml() {
  sed -e 's/&lt;/</g' -e 's/&gt;/>/g' -e 's/&quot;/"/g' -e "s/&apos;/'/g" -e 's/&amp;/\&/g'
}
# The string after <key>$2</key> in plist $1 (the plist package writes one element a line).
plist_value() {
  sed -n "/<key>$2<\/key>/{n;s/.*<string>\(.*\)<\/string>.*/\1/p;}" "$1" | unxml
}
label_of() {
  label=$(plist_value "$1" Label)
  if [ -z "$label" ]; then
    echo "$1: Invalid property list" >&2
    exit 1
  fi
}
target() {
  printf '%s' "${BRACE}1#gui/*/}"
}
uid_of() {
  rest=${BRACE}1#gui/}
  printf '%s' "${BRACE}rest%%/*}"
}
is_loaded() {
  [ -f "$dir/loaded/$1" ]
}
# A job booted out while DRAIN > 0 stays in loaded/ with a countdown in draining/.
draining() {
  [ -f "$dir/draining/$1" ]
}
drain_step() {
  left=$(cat "$dir/draining/$1")
  if [ "$left" -le 1 ]; then
    rm "$dir/draining/$1" "$dir/loaded/$1"
  else
    echo $((left - 1)) > "$dir/draining/$1"
  fi
}
# True (and one fewer left) while busy.count is above zero.
busy() {
  left=$(cat "$dir/busy.count" 2>/dev/null || echo 0)
  [ "$left" -gt 0 ] || return 1
  echo $((left - 1)) > "$dir/busy.count"
}
not_found() {
  echo "Could not find service \"$1\" in domain for user gui: $2" >&2
  exit 113
}
# Sets pid and succeeds while the job's process runs.
running_pid() {
  [ -f "$dir/pids/$1" ] || return 1
  pid=$(cat "$dir/pids/$1")
  kill -0 "$pid" 2>/dev/null
}
spawn() {
  label=$1
  plist=$(cat "$dir/loaded/$label")
  mkdir -p "$dir/pids" "$dir/exits"
  rm -f "$dir/pids/$label" "$dir/exits/$label"
  wd=$(plist_value "$plist" WorkingDirectory)
  out=$(plist_value "$plist" StandardOutPath)
  err=$(plist_value "$plist" StandardErrorPath)
  path=$(plist_value "$plist" PATH)
  job=$(plist_value "$plist" LAUNCHD_JOB_NAME)
  args=$(sed -n '/<key>ProgramArguments<\/key>/,/<\/array>/s/.*<string>\(.*\)<\/string>.*/\1/p' "$plist" | unxml)
  set --
  while IFS= read -r arg; do set -- "$@" "$arg"; done <<EOF
$args
EOF
  (
    cd "$wd" || exit 1
    env -i HOME="$wd" PATH="$path" LAUNCHD_JOB_NAME="$job" XPC_SERVICE_NAME="$label" "$@" </dev/null >>"$out" 2>>"$err" &
    child=$!
    echo "$child" > "$dir/pids/$label.new"
    mv "$dir/pids/$label.new" "$dir/pids/$label"
    wait "$child"
    echo $? > "$dir/exits/$label"
  ) </dev/null >/dev/null 2>&1 &
  while [ ! -f "$dir/pids/$label" ]; do sleep 0.01; done
}
# SIGTERM, then SIGKILL after 5 s (launchd's ExitTimeOut is 20 s); returns once the exit code is recorded.
kill_job() {
  running_pid "$1" || return 0
  kill -TERM "$pid" 2>/dev/null
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
  kill -KILL "$pid" 2>/dev/null
  i=0
  while [ ! -f "$dir/exits/$1" ] && [ $i -lt 200 ]; do sleep 0.01; i=$((i + 1)); done
}
case "$sub" in
  print)
    label=$(target "$1")
    draining "$label" && drain_step "$label"
    if ! is_loaded "$label"; then
      echo 'Bad request.' >&2
      not_found "$label" "$(uid_of "$1")"
    fi
    state=$STATE
    pid=$PID
    last=$LAST_EXIT
    if [ -n "$SPAWN" ]; then
      if running_pid "$label"; then
        state=running
      else
        state='not running'
        last=$(cat "$dir/exits/$label" 2>/dev/null || echo '(never exited)')
      fi
    fi
    printf '%s = {\n' "$1"
    printf '\tactive count = 1\n\tpath = %s\n\ttype = LaunchAgent\n\tstate = %s\n\n' "$(cat "$dir/loaded/$label")" "$state"
    printf '\tprogram = /usr/local/bin/amp-distro\n\targuments = {\n\t\t/usr/local/bin/amp-distro\n\t\tserve\n\t}\n\n'
    printf '\tenvironment = {\n\t\tPATH => /usr/bin:/bin\n\t\tLAUNCHD_JOB_NAME => %s\n\t}\n\n' "$label"
    printf '\tdomain = gui/501 [100012]\n\tasid = 100012\n\truns = 1\n'
    if [ "$state" = running ]; then
      printf '\tpid = %s\n\tlast exit code = (never exited)\n' "$pid"
    else
      printf '\tlast exit code = %s\n' "$last"
    fi
    printf '\n\tevent triggers = {\n\t\tcom.amplifier.distro.268435461 => {\n\t\t\tkeepalive = 1\n\t\t\tstate = 0\n\t\t\tpid = 99\n\t\t}\n\t}\n\n'
    printf '\tproperties = keepalive | runatload | inferred program\n}\n'
    ;;
  list)
    if ! is_loaded "$1"; then
      echo "Could not find service \"$1\" in domain for port" >&2
      exit 113
    fi
    printf '{\n\t"LimitLoadToSessionType" = "Aqua";\n\t"Label" = "%s";\n\t"OnDemand" = false;\n\t"LastExitStatus" = 0;\n' "$1"
    [ "$STATE" = running ] && printf '\t"PID" = %s;\n' "$PID"
    printf '\t"Program" = "/usr/local/bin/amp-distro";\n};\n'
    ;;
  enable)
    rm -f "$dir/disabled/$(target "$1")"
    ;;
  disable)
    mkdir -p "$dir/disabled"
    : > "$dir/disabled/$(target "$1")"
    ;;
  bootstrap)
    if [ -n "$FAIL_BOOTSTRAP" ]; then
      echo 'Bootstrap failed: 5: Input/output error' >&2
      exit 5
    fi
    label_of "$2"
    if busy; then
      echo 'Bootstrap failed: 37: Operation already in progress' >&2
      exit 37
    fi
    if [ -f "$dir/disabled/$label" ]; then
      echo 'Bootstrap failed: 119: Service is disabled' >&2
      exit 119
    fi
    if is_loaded "$label" || draining "$label"; then
      echo 'Bootstrap failed: 5: Input/output error' >&2
      exit 5
    fi
    printf '%s' "$2" > "$dir/loaded/$label"
    if [ -n "$SPAWN" ]; then spawn "$label"; fi
    ;;
  kickstart)
    kill=''
    while [ $# -gt 1 ]; do
      [ "$1" = -k ] && kill=1
      shift
    done
    label=$(target "$1")
    if ! is_loaded "$label" || draining "$label"; then
      if [ "$MISSING" = 3 ]; then
        echo 'Could not kickstart service: 3: No such process' >&2
        exit 3
      fi
      not_found "$label" "$(uid_of "$1")"
    fi
    if busy; then
      echo "Could not kickstart service \"$label\": 37: Operation already in progress" >&2
      exit 37
    fi
    if [ -n "$SPAWN" ]; then
      if ! running_pid "$label"; then
        spawn "$label"
      elif [ -n "$kill" ]; then
        kill_job "$label"
        spawn "$label"
      fi
    fi
    ;;
  load)
    for file; do :; done
    label_of "$file"
    if is_loaded "$label"; then
      echo "$file: service already loaded" >&2
      exit 0
    fi
    printf '%s' "$file" > "$dir/loaded/$label"
    ;;
  bootout)
    label=$(target "$1")
    if ! is_loaded "$label" || draining "$label"; then
      if [ "$MISSING" = 113 ]; then
        echo 'Boot-out failed: 113: Could not find specified service' >&2
        exit 113
      fi
      echo 'Boot-out failed: 3: No such process' >&2
      exit 3
    fi
    if [ -n "$SPAWN" ]; then kill_job "$label"; fi
    if [ "$DRAIN" -gt 0 ]; then
      mkdir -p "$dir/draining"
      echo "$DRAIN" > "$dir/draining/$label"
    else
      rm "$dir/loaded/$label"
    fi
    ;;
  unload)
    for file; do :; done
    label_of "$file"
    if ! is_loaded "$label"; then
      echo 'Could not find specified service' >&2
      exit 0
    fi
    rm "$dir/loaded/$label"
    ;;
  remove)
    if ! is_loaded "$1"; then
      echo 'launchctl remove error: No such process' >&2
      exit 3
    fi
    rm "$dir/loaded/$1"
    ;;
  *)
    echo "Unrecognized subcommand: $sub" >&2
    exit 64
    ;;
esac
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
  /** Makes launchd forget every job, as after a reboot with the agents removed from its database. */
  unloadAll(): void
  /** spawn mode: the PID of the job's process while it runs. */
  pidOf(label: string): number | undefined
  /** Kills every process the fake started, then removes its folder. */
  cleanup(): void
}

function shellValue(value: string): string {
  return `'${value.replaceAll("'", String.raw`'\''`)}'`
}

function readPid(file: string): number | undefined {
  const text = existsSync(file) ? readFileSync(file, 'utf8').trim() : ''
  return /^\d+$/.test(text) ? Number(text) : undefined
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Writes the fake launchctl script into a new temporary folder. */
export function createFakeLaunchctl(): FakeLaunchctl {
  const dir = mkdtempSync(join(tmpdir(), 'fake-launchctl-'))
  const script = join(dir, 'launchctl')
  writeFileSync(script, SCRIPT)
  mkdirSync(join(dir, 'loaded'))
  chmodSync(script, 0o755)
  const callsFile = join(dir, 'calls.jsonl')
  const loadedDir = join(dir, 'loaded')
  const pidsDir = join(dir, 'pids')
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
    configure(config) {
      const lines = [
        `UNSUPPORTED=${shellValue((config.unsupported ?? []).join(' '))}`,
        `UNSUPPORTED_STYLE=${shellValue(config.unsupportedStyle ?? 'usage')}`,
        `STATE=${shellValue(config.state ?? 'running')}`,
        `PID=${shellValue(String(config.pid ?? 1234))}`,
        `LAST_EXIT=${config.lastExitCode ?? 1}`,
        `FAIL_BOOTSTRAP=${config.failBootstrap ? '1' : "''"}`,
        `DRAIN=${config.drain ?? 0}`,
        `MISSING=${config.missing ?? 113}`,
        `SPAWN=${config.spawn ? '1' : "''"}`,
      ]
      writeFileSync(join(dir, 'config.sh'), `${lines.join('\n')}\n`)
      writeFileSync(join(dir, 'busy.count'), `${config.busy ?? 0}\n`)
    },
    loaded: () => Object.fromEntries(readdirSync(loadedDir).map((label) => [label, readFileSync(join(loadedDir, label), 'utf8')])),
    unloadAll() {
      for (const label of readdirSync(loadedDir)) rmSync(join(loadedDir, label))
    },
    pidOf(label) {
      const pid = readPid(join(pidsDir, label))
      return pid !== undefined && running(pid) ? pid : undefined
    },
    cleanup() {
      for (const label of existsSync(pidsDir) ? readdirSync(pidsDir) : []) {
        const pid = readPid(join(pidsDir, label))
        if (pid !== undefined && running(pid)) process.kill(pid, 'SIGKILL')
      }

      // A killed job's subshell still records its exit code in the folder a moment later: removing is retried meanwhile.
      rmSync(dir, {recursive: true, force: true, maxRetries: 20, retryDelay: 25})
    },
  }
}

/**
 * The service context launchd tests run with: `home`, a PATH (a fake
 * launchctl's folder first, for a test that has one), user ada with uid
 * 501, and the real command runner; `overrides` set the rest.
 */
export function launchdContext(home: string, PATH: string, overrides: Partial<ServiceContext> = {}): ServiceContext {
  return {
    home,
    env: {PATH},
    uid: 501,
    user: 'ada',
    exec: execCommand,
    stream: streamLines,
    version: '0.3.0',
    nodePath: process.execPath,
    resolveBinary: () => ({path: '/usr/local/bin/amp-distro'}),
    ...overrides,
  }
}
