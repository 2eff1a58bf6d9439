import {NAMES} from '../paths.js'

/** A duration for people, the same on every platform: `12 s`, `4 min 12 s`, `2 h 5 min`, `3 d 4 h`. */
export function formatUptime(seconds: number): string {
  const whole = Math.max(0, Math.floor(seconds))
  const days = Math.floor(whole / 86_400)
  const hours = Math.floor((whole % 86_400) / 3600)
  const minutes = Math.floor((whole % 3600) / 60)
  if (days > 0) return `${days} d ${hours} h`
  if (hours > 0) return `${hours} h ${minutes} min`
  if (minutes > 0) return `${minutes} min ${whole % 60} s`
  return `${whole} s`
}

/** The status detail line with the running server's version next to this CLI's. */
export function versionLine(serverVersion: string, cliVersion: string): string {
  return `Version:  ${serverVersion} (this ${NAMES.bin}: ${cliVersion})`
}

/**
 * The status warning for a running server of another version than this
 * CLI, or undefined when they agree: after an upgrade the supervisor keeps
 * running the old process until it is restarted.
 */
export function versionDriftWarning(serverVersion: string, cliVersion: string): string | undefined {
  if (serverVersion === cliVersion) return undefined
  return [
    `Warning: the running server is version ${serverVersion}, this ${NAMES.bin} is ${cliVersion}: the service runs the new files only once restarted.`,
    `  Run: ${NAMES.bin} service restart`,
  ].join('\n')
}
