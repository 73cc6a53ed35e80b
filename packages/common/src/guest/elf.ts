import { GuestImageError } from '../errors.ts';
import { RAM_BASE } from './addressMap.ts';

/* ELF32 for RISC-V (System V gABI; RISC-V ELF psABI §8 for e_flags). */
const EM_RISCV = 243;
const ET_EXEC = 2;
const PT_LOAD = 1;
const SHT_SYMTAB = 2;
// EF_RISCV_RVC (0x1) needs no check: the hart implements C (cpu.ts), so rv32imac images load
// like rv32im ones, whether or not their compressed instructions ever run.
const EF_RISCV_FLOAT_ABI = 0x6;
const ELF_HEADER_BYTES = 52;
const PROGRAM_HEADER_BYTES = 32;
const SECTION_HEADER_BYTES = 40;
const SYMBOL_BYTES = 16;

export interface ElfSegment {
  address: number;
  data: Uint8Array;
  memoryBytes: number;
}

export interface ElfImage {
  entry: number;
  segments: ElfSegment[];
  /** Global and local symbols by name (the last definition wins). */
  symbols: Map<string, number>;
}

function hex(value: number): string {
  return `0x${(value >>> 0).toString(16).padStart(8, '0')}`;
}

/**
 * Parses a static RV32 executable and checks that it can run on a machine with `ramBytes` of RAM.
 * Every field read from the file is bounds-checked; problems are GuestImageErrors naming them.
 */
export function parseElf(bytes: Uint8Array, ramBytes: number, name = 'image'): ElfImage {
  const fail = (reason: string): never => {
    throw new GuestImageError(`${name}: ${reason}`);
  };
  if (bytes.length < 4 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    fail('not an ELF file (it does not start with \\x7fELF)');
  }
  if (bytes.length < ELF_HEADER_BYTES) fail(`truncated ELF header (${bytes.length} bytes)`);
  if (bytes[4] === 2) fail('a 64-bit ELF; this machine runs RV32 (32-bit) images');
  if (bytes[4] !== 1) fail(`unknown ELF class ${bytes[4]}`);
  if (bytes[5] !== 1) fail('not little-endian');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (offset: number) => view.getUint16(offset, true);
  const u32 = (offset: number) => view.getUint32(offset, true);
  const type = u16(16);
  const machine = u16(18);
  if (machine !== EM_RISCV) fail(`built for ELF machine ${machine}, not RISC-V (${EM_RISCV})`);
  if (type !== ET_EXEC) fail(`not a static executable (ELF type ${type}; link with -static and no PIE)`);
  const entry = u32(24);
  const programHeaderOffset = u32(28);
  const sectionHeaderOffset = u32(32);
  const flags = u32(36);
  if ((flags & EF_RISCV_FLOAT_ABI) !== 0) fail('uses a hardware floating-point ABI; build with -mabi=ilp32');
  const programHeaderSize = u16(42);
  const programHeaderCount = u16(44);
  const sectionHeaderSize = u16(46);
  const sectionHeaderCount = u16(48);
  if (programHeaderCount === 0) fail('has no program headers');
  if (programHeaderSize < PROGRAM_HEADER_BYTES) fail(`program header size ${programHeaderSize} is too small`);
  if (programHeaderOffset + programHeaderCount * programHeaderSize > bytes.length)
    fail('program header table lies beyond the end of the file');

  const ramEnd = RAM_BASE + ramBytes;
  const segments: ElfSegment[] = [];
  for (let i = 0; i < programHeaderCount; i++) {
    const at = programHeaderOffset + i * programHeaderSize;
    if (u32(at) !== PT_LOAD) continue;
    const offset = u32(at + 4);
    const address = u32(at + 12); // p_paddr: where the bytes go in guest-physical memory
    const fileBytes = u32(at + 16);
    const memoryBytes = u32(at + 20);
    if (memoryBytes === 0) continue;
    if (fileBytes > memoryBytes) fail(`segment ${i} has more file bytes (${fileBytes}) than memory bytes (${memoryBytes})`);
    if (offset + fileBytes > bytes.length) fail(`segment ${i} data lies beyond the end of the file`);
    if (address < RAM_BASE || address + memoryBytes > ramEnd) {
      fail(
        `segment ${i} at ${hex(address)} (${memoryBytes} bytes) does not fit in RAM ${hex(RAM_BASE)}–${hex(ramEnd - 1)}` +
          (address >= RAM_BASE ? '; the image is larger than guest memory (give the guest more memory)' : ''),
      );
    }
    segments.push({ address, data: bytes.subarray(offset, offset + fileBytes), memoryBytes });
  }
  if (segments.length === 0) fail('has no loadable segments');
  // Instructions start at 2-byte boundaries (IALIGN = 16, Unprivileged ISA §1.5).
  if ((entry & 1) !== 0) fail(`entry point ${hex(entry)} is not 2-byte aligned`);
  if (!segments.some((s) => entry >= s.address && entry < s.address + s.memoryBytes)) {
    fail(`entry point ${hex(entry)} is outside every loaded segment`);
  }
  return { entry, segments, symbols: readSymbols(bytes, view, sectionHeaderOffset, sectionHeaderSize, sectionHeaderCount, fail) };
}

function readSymbols(
  bytes: Uint8Array,
  view: DataView,
  tableOffset: number,
  entrySize: number,
  count: number,
  fail: (reason: string) => never,
): Map<string, number> {
  const symbols = new Map<string, number>();
  if (tableOffset === 0 || count === 0) return symbols;
  if (entrySize < SECTION_HEADER_BYTES || tableOffset + count * entrySize > bytes.length) {
    fail('section header table lies beyond the end of the file');
  }
  const u32 = (offset: number) => view.getUint32(offset, true);
  for (let i = 0; i < count; i++) {
    const at = tableOffset + i * entrySize;
    if (u32(at + 4) !== SHT_SYMTAB) continue;
    const offset = u32(at + 16);
    const size = u32(at + 20);
    const link = u32(at + 24);
    if (offset + size > bytes.length || link >= count) fail('symbol table lies beyond the end of the file');
    const stringsAt = tableOffset + link * entrySize;
    const stringsOffset = u32(stringsAt + 16);
    const stringsSize = u32(stringsAt + 20);
    if (stringsOffset + stringsSize > bytes.length) fail('string table lies beyond the end of the file');
    for (let s = offset; s + SYMBOL_BYTES <= offset + size; s += SYMBOL_BYTES) {
      const nameOffset = u32(s);
      if (nameOffset === 0 || nameOffset >= stringsSize) continue;
      let end = stringsOffset + nameOffset;
      while (end < stringsOffset + stringsSize && bytes[end] !== 0) end++;
      const name = new TextDecoder().decode(bytes.subarray(stringsOffset + nameOffset, end));
      symbols.set(name, u32(s + 4));
    }
  }
  return symbols;
}
