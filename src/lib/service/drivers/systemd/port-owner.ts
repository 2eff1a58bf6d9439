import {readdirSync, readFileSync, readlinkSync} from 'node:fs'

/** TCP state LISTEN in /proc/net/tcp. */
const LISTEN = '0A'

/**
 * The socket inodes listening on `port` in the text of /proc/net/tcp or
 * /proc/net/tcp6: lines of `sl local_address rem_address st … inode`, the
 * local address as `HEXADDR:HEXPORT`.
 */
export function listeningInodes(text: string, port: number): string[] {
  const inodes: string[] = []
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/)
    if (fields.length < 10) continue
    const local = fields[1]
    const at = local.lastIndexOf(':')
    if (at < 0 || Number.parseInt(local.slice(at + 1), 16) !== port || fields[3] !== LISTEN) continue
    if (fields[9] !== '0') inodes.push(fields[9])
  }

  return inodes
}

function readOr(file: string, fallback = ''): string {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return fallback
  }
}

/**
 * The program listening on TCP `port` on this machine, as `name (PID n)`,
 * found through /proc: the listening socket's inode, then the process that
 * has it open. Undefined when no listener is found or its process cannot be
 * seen (another user's, without the privileges to look).
 */
export function portOwner(port: number, proc = '/proc'): string | undefined {
  const inodes = new Set([...listeningInodes(readOr(`${proc}/net/tcp`), port), ...listeningInodes(readOr(`${proc}/net/tcp6`), port)])
  if (inodes.size === 0) return undefined
  const targets = new Set([...inodes].map((inode) => `socket:[${inode}]`))
  let pids: string[]
  try {
    pids = readdirSync(proc).filter((entry) => /^\d+$/.test(entry))
  } catch {
    return undefined
  }

  for (const pid of pids) {
    let fds: string[]
    try {
      fds = readdirSync(`${proc}/${pid}/fd`)
    } catch {
      continue
    }

    for (const fd of fds) {
      let target: string
      try {
        target = readlinkSync(`${proc}/${pid}/fd/${fd}`)
      } catch {
        continue
      }

      if (targets.has(target)) return `${readOr(`${proc}/${pid}/comm`).trim() || 'unknown program'} (PID ${pid})`
    }
  }

  return undefined
}
