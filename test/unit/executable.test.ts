import {expect} from 'chai'
import {arch} from 'node:os'

import {executableTarget, readHeader} from '../helpers/executable.js'

/** The first 20 bytes of a 64-bit ELF file with the given data encoding and e_machine. */
function elf(machine: number, bigEndian = false): Buffer {
  const header = Buffer.alloc(20)
  header.set([0x7f, 0x45, 0x4c, 0x46, 2, bigEndian ? 2 : 1, 1])
  if (bigEndian) header.writeUInt16BE(machine, 18)
  else header.writeUInt16LE(machine, 18)
  return header
}

/** The first 8 bytes of a 64-bit Mach-O file: magic and cputype, little-endian as on Apple hardware. */
function macho(cpuType: number): Buffer {
  const header = Buffer.alloc(8)
  header.writeUInt32LE(0xfe_ed_fa_cf, 0)
  header.writeUInt32LE(cpuType, 4)
  return header
}

describe('executableTarget (ELF and Mach-O headers)', () => {
  it('reads the ELF machine: x86-64 and AArch64, in either byte order', () => {
    expect(executableTarget(elf(62))).to.equal('linux-x64')
    expect(executableTarget(elf(183))).to.equal('linux-arm64')
    expect(executableTarget(elf(183, true))).to.equal('linux-arm64')
  })

  it('reads the Mach-O CPU type: x86-64 and arm64', () => {
    expect(executableTarget(macho(0x01_00_00_07))).to.equal('darwin-x64')
    expect(executableTarget(macho(0x01_00_00_0c))).to.equal('darwin-arm64')
  })

  it('knows no target for other machines, universal Mach-O files, scripts and short files', () => {
    expect(executableTarget(elf(40))).to.equal(undefined)
    expect(executableTarget(macho(0x00_00_00_07))).to.equal(undefined)
    expect(executableTarget(Buffer.from([0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2]))).to.equal(undefined)
    expect(executableTarget(Buffer.from('#!/usr/bin/env node\n'))).to.equal(undefined)
    expect(executableTarget(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))).to.equal(undefined)
  })

  it("names this machine's target for the Node running the tests", () => {
    expect(executableTarget(readHeader(process.execPath))).to.equal(`${process.platform}-${arch()}`)
  })
})
