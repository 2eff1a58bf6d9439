import {closeSync, openSync, readSync} from 'node:fs'

const ELF_MACHINES: Record<number, string> = {62: 'x64', 183: 'arm64'}
const MACHO_CPU_TYPES: Record<number, string> = {0x01_00_00_07: 'x64', 0x01_00_00_0c: 'arm64'}
const MACHO_64_MAGIC = 0xfe_ed_fa_cf

/**
 * The `<platform>-<arch>` an executable's header says it is built for, read
 * from the bytes themselves: an ELF file's e_machine (Linux), or a 64-bit
 * Mach-O file's cputype (macOS). Undefined for anything else, a universal
 * Mach-O file included, since that is not built for one target.
 */
export function executableTarget(header: Buffer): string | undefined {
  if (header.length >= 20 && header.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) {
    // e_ident[EI_DATA]: 1 little-endian, 2 big-endian; e_machine follows e_ident (16 bytes) and e_type (2).
    const machine = header[5] === 2 ? header.readUInt16BE(18) : header.readUInt16LE(18)
    const arch = ELF_MACHINES[machine]
    return arch && `linux-${arch}`
  }

  if (header.length >= 8) {
    const littleEndian = header.readUInt32LE(0) === MACHO_64_MAGIC
    if (!littleEndian && header.readUInt32BE(0) !== MACHO_64_MAGIC) return undefined
    const arch = MACHO_CPU_TYPES[littleEndian ? header.readUInt32LE(4) : header.readUInt32BE(4)]
    return arch && `darwin-${arch}`
  }

  return undefined
}

/** The first bytes of a file: enough for executableTarget. */
export function readHeader(file: string, length = 64): Buffer {
  const fd = openSync(file, 'r')
  try {
    const buffer = Buffer.alloc(length)
    return buffer.subarray(0, readSync(fd, buffer, 0, length, 0))
  } finally {
    closeSync(fd)
  }
}
