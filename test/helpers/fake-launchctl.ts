import {chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
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
  /**
   * How many `print` calls a booted-out job stays visible for, as launchd
   * keeps a job while it tears it down; `bootstrap` fails with 5 meanwhile.
   */
  drain?: number
}

// A stand-in for launchctl, in POSIX sh so each call starts in milliseconds: it
// records each argument vector as one JSON line in calls.jsonl, keeps each
// loaded label as a file in loaded/ holding its plist path, and answers as
// launchctl does. config.sh (written by configure) sets how it answers.
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
UNSUPPORTED='' UNSUPPORTED_STYLE=usage STATE=running PID=1234 FAIL_BOOTSTRAP='' DRAIN=0
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
label_of() {
  label=$(sed -n '/<key>Label<\/key>/{n;s/.*<string>\(.*\)<\/string>.*/\1/p;}' "$1")
  if [ -z "$label" ]; then
    echo "$1: Invalid property list" >&2
    exit 1
  fi
}
target() {
  printf '%s' "${BRACE}1#gui/*/}"
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
case "$sub" in
  print)
    label=$(target "$1")
    draining "$label" && drain_step "$label"
    if ! is_loaded "$label"; then
      echo "Could not find service \"$label\" in domain for user gui: 501" >&2
      exit 113
    fi
    printf '%s = {\n' "$1"
    printf '\tactive count = 1\n\tpath = %s\n\ttype = LaunchAgent\n\tstate = %s\n\n' "$(cat "$dir/loaded/$label")" "$STATE"
    printf '\tprogram = /usr/local/bin/amp-distro\n\targuments = {\n\t\t/usr/local/bin/amp-distro\n\t\tserve\n\t}\n\n'
    printf '\tenvironment = {\n\t\tPATH => /usr/bin:/bin\n\t\tLAUNCHD_JOB_NAME => %s\n\t}\n\n' "$label"
    printf '\tdomain = gui/501 [100012]\n\tasid = 100012\n\truns = 1\n'
    if [ "$STATE" = running ]; then
      printf '\tpid = %s\n\tlast exit code = (never exited)\n' "$PID"
    else
      printf '\tlast exit code = 1\n'
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
    ;;
  bootstrap)
    if [ -n "$FAIL_BOOTSTRAP" ]; then
      echo 'Bootstrap failed: 5: Input/output error' >&2
      exit 5
    fi
    label_of "$2"
    if is_loaded "$label" || draining "$label"; then
      echo 'Bootstrap failed: 5: Input/output error' >&2
      exit 5
    fi
    printf '%s' "$2" > "$dir/loaded/$label"
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
      echo 'Boot-out failed: 3: No such process' >&2
      exit 3
    fi
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
  cleanup(): void
}

function shellValue(value: string): string {
  return `'${value.replaceAll("'", String.raw`'\''`)}'`
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
        `FAIL_BOOTSTRAP=${config.failBootstrap ? '1' : "''"}`,
        `DRAIN=${config.drain ?? 0}`,
      ]
      writeFileSync(join(dir, 'config.sh'), `${lines.join('\n')}\n`)
    },
    loaded: () => (existsSync(loadedDir) ? Object.fromEntries(readdirSync(loadedDir).map((label) => [label, readFileSync(join(loadedDir, label), 'utf8')])) : {}),
    unloadAll() {
      for (const label of readdirSync(loadedDir)) rmSync(join(loadedDir, label))
    },
    cleanup: () => rmSync(dir, {recursive: true, force: true}),
  }
}
