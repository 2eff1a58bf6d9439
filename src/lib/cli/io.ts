/** Where a command's human-readable lines go; the CLI passes its own, tests pass recorders. */
export interface Io {
  log(line: string): void
  warn(line: string): void
}

export const consoleIo: Io = {
  log: (line) => process.stdout.write(`${line}\n`),
  warn: (line) => process.stderr.write(`${line}\n`),
}
