import {UserError} from './errors.js'

// Control characters would let a value start a new directive in a unit file.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/

/** Throws when a value carries a control character (newline, tab, NUL, DEL…). */
export function refuseControlChars(what: string, value: string): void {
  if (CONTROL.test(value)) {
    throw new UserError(`Invalid ${what}: ${JSON.stringify(value)} contains a control character.`)
  }
}

/** Parses a TCP port given as text: a whole number from 1 to 65535. */
export function parsePort(value: string | number): number {
  const text = String(value).trim()
  const port = /^\d+$/.test(text) ? Number(text) : Number.NaN
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new UserError(`Invalid port: ${JSON.stringify(String(value))}. Use a whole number from 1 to 65535.`)
  }

  return port
}

const LABEL = /^(?!-)[a-z\d-]{1,63}(?<!-)$/i

/** Accepts an IPv4 or IPv6 address or an RFC 1123 hostname; returns it unchanged. */
export function validateHost(value: string): string {
  refuseControlChars('host', value)
  const bare = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value
  // node:net loads only here, when a host is checked: the service commands that check none (status, stop) never pay for it.
  if (process.getBuiltinModule('node:net').isIP(bare)) return bare
  const name = value.endsWith('.') ? value.slice(0, -1) : value
  const valid = name.length > 0 && name.length <= 253 && name.split('.').every((label) => LABEL.test(label)) && !/^[\d.]+$/.test(name)
  if (!valid) {
    throw new UserError(`Invalid host: ${JSON.stringify(value)}. Use an IP address (such as 127.0.0.1) or a hostname.`)
  }

  return value
}

/** Parses a whole number of seconds or a count, at least `min`. */
export function parseWhole(what: string, value: string | number, min: number): number {
  const text = String(value).trim()
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UserError(`Invalid ${what}: ${JSON.stringify(String(value))}. Use a whole number of at least ${min}.`)
  }

  return n
}

/** True for addresses that only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/i.test(host)
}
