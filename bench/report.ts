import {cpus, loadavg, release, totalmem} from 'node:os'
import {parseArgs, type ParseArgsConfig} from 'node:util'

/** The machine a figure was measured on: benchmark numbers mean little without it. */
export function machineLine(): string {
  const cores = cpus()
  const model = cores[0]?.model.trim() ?? 'unknown CPU'
  const memory = (totalmem() / 2 ** 30).toFixed(1)
  return `${model}, ${cores.length} cores, ${memory} GiB, Linux ${release()}, Node ${process.version}`
}

/** One-, five- and fifteen-minute load averages: a loaded machine skews every figure. */
export function loadLine(): string {
  return `load average ${loadavg()
    .map((n) => n.toFixed(2))
    .join(' ')}`
}

/** The middle value (mean of the two middle ones for an even count). */
export function median(values: number[]): number {
  if (values.length === 0) throw new Error('median of nothing')
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** `meets` or `MISSES`, so a missed target stands out in the output. */
export function verdict(ok: boolean): string {
  return ok ? 'meets target' : 'MISSES target'
}

/** Left-aligned first column, right-aligned others: a plain-text table. */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => row[col].length)))
  return rows.map((row) => row.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]) : cell.padStart(widths[col]))).join('  ')).join('\n')
}

/**
 * Parses a bench script's arguments (`values` of string options, `flags`
 * named by the boolean options given); on `--help` or bad input prints
 * `usage` and exits (0 for help, 2 for bad input), never a stack trace.
 */
export function benchArgs(
  usage: string,
  options: NonNullable<ParseArgsConfig['options']>,
  argv = process.argv.slice(2),
): {values: Record<string, string | undefined>; flags: Set<string>; positionals: string[]} {
  try {
    const parsed = parseArgs({args: argv, options: {...options, help: {type: 'boolean', short: 'h'}}, allowPositionals: true, strict: true})
    if (parsed.values.help) {
      console.log(usage)
      process.exit(0)
    }

    const values: Record<string, string | undefined> = {}
    const flags = new Set<string>()
    for (const [name, value] of Object.entries(parsed.values)) {
      if (typeof value === 'string') values[name] = value
      else if (value === true) flags.add(name)
    }

    return {values, flags, positionals: parsed.positionals}
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${usage}`)
    process.exit(2)
  }
}

/** A whole number of at least `min` from a command-line value, or exit 2 with `usage`. */
export function wholeArg(usage: string, what: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN
  if (!Number.isSafeInteger(n) || n < min) {
    console.error(`Invalid ${what}: ${JSON.stringify(value)} (a whole number of at least ${min}).\n\n${usage}`)
    process.exit(2)
  }

  return n
}
