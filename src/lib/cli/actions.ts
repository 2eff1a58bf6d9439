import {homedir} from 'node:os'

import {UserError} from '../errors.js'
import {consoleIo} from './io.js'
import {packageInfo} from '../pkg.js'
import type {ServiceCommand} from '../service/run.js'
import type {LogLine} from '../service/types.js'
import {shutdownSignal} from '../process/signals.js'

/** Flag values as both the oclif parser and the fast path deliver them. */
export type FlagValues = Record<string, boolean | string | undefined>

/**
 * What each command does once its flags are parsed, by oclif command id. The
 * oclif command classes and the start-up fast path (src/fast-path.ts) both
 * call these, so a command's behaviour is written once, and the commands
 * listed here are the ones the fast path runs without oclif. Modules load
 * lazily: a command pays only for what it uses.
 */
export const actions: Record<string, (flags: FlagValues) => Promise<void>> = {
  async serve(flags) {
    const [{serve}, {boundOutput}] = await Promise.all([import('../server/serve.js'), import('../process/output-bound.js')])
    boundOutput([1, 2])
    await serve(
      {host: String(flags.host), port: String(flags.port)},
      {home: homedir(), io: consoleIo, version: packageInfo().version, pid: process.pid, signal: shutdownSignal(), env: process.env},
    )
  },

  async watchdog(flags) {
    const [{watchdog}, {execCommand}, {boundOutput, isRegularFile}] = await Promise.all([import('../watchdog/watchdog.js'), import('../process/exec.js'), import('../process/output-bound.js')])
    boundOutput([1, 2])
    process.exitCode = await watchdog(
      {
        host: String(flags.host),
        port: String(flags.port),
        checkInterval: String(flags['check-interval']),
        restartAfter: String(flags['restart-after']),
        maxRestarts: String(flags['max-restarts']),
      },
      {
        home: homedir(),
        env: process.env,
        pid: process.pid,
        uid: process.getuid?.() ?? 0,
        signal: shutdownSignal(),
        argv: process.argv,
        cwd: process.cwd(),
        execPath: process.execPath,
        exec: execCommand,
        // A file as stderr (launchd's StandardErrorPath) would only repeat watchdog.log, which is rotated; a pipe or the journal gets the lines.
        echo: isRegularFile(2) ? undefined : (line) => process.stderr.write(`${line}\n`),
      },
    )
  },

  'service:install': (flags) => service('install', flags),
  'service:uninstall': (flags) => service('uninstall', flags),
  'service:status': (flags) => service('status', flags),
  'service:start': (flags) => service('start', flags),
  'service:stop': (flags) => service('stop', flags),
  'service:restart': (flags) => service('restart', flags),
  'service:logs': (flags) => service('logs', flags),
}

const text = (value: boolean | string | undefined) => (value === undefined ? undefined : String(value))

async function service(command: ServiceCommand, flags: FlagValues): Promise<void> {
  const [{runServiceCommand}, {printResult}] = await Promise.all([import('../service/run.js'), import('../service/result.js')])
  const json = flags.json === true
  const lines: LogLine[] = []
  let printed = 0
  const result = await runServiceCommand(command, {
    host: text(flags.host),
    port: text(flags.port),
    watchdog: flags.watchdog === undefined ? undefined : Boolean(flags.watchdog),
    'dry-run': flags['dry-run'] === true,
    wait: text(flags.wait),
    lines: text(flags.lines),
    follow: flags.follow === true,
    ...(command === 'logs'
      ? {
          signal: shutdownSignal(),
          // As text each line is printed the moment it is read (a follow never ends by itself); as JSON they go into the result.
          write: json
            ? (line: LogLine) => lines.push(line)
            : (line: LogLine) => {
                printed++
                process.stdout.write(`${line.text}\n`)
              },
        }
      : {}),
  })
  // As text, the lines are the output: a summary after them would only get in the way of a pipe.
  if (command === 'logs' && !json && result.success && printed > 0) return
  printResult(json && command === 'logs' ? {...result, lines} : result, json)
}

/**
 * Prints a failure the user can act on (no stack trace) and returns its exit
 * code; anything else is a bug and is rethrown.
 */
export function reportFailure(error: unknown): number {
  if (!(error instanceof UserError)) throw error
  process.stderr.write([`Error: ${error.message}`, ...error.details.map((line) => `  ${line}`)].join('\n') + '\n')
  return error.exit
}
