// Writes minimal static RV32 ELF executables (one PT_LOAD segment and a symbol table) for tests
// that need an image with particular symbols (tohost, begin_signature, ...).

export interface ElfSpec {
  /** Load address of `code` (also the entry point). */
  address: number;
  code: Uint8Array;
  /** Bytes of zeros after the code, in the same segment. */
  bssBytes?: number;
  symbols: Record<string, number>;
}

export function buildElf(spec: ElfSpec): Uint8Array {
  const names = Object.keys(spec.symbols);
  let strtab = '\0';
  const nameOffsets = names.map((name) => {
    const at = strtab.length;
    strtab += `${name}\0`;
    return at;
  });
  const shstrtab = '\0.symtab\0.strtab\0.shstrtab\0';
  const codeAt = 52 + 32;
  const strtabAt = codeAt + spec.code.length;
  const symtabAt = (strtabAt + strtab.length + 3) & ~3;
  const symtabBytes = 16 * (names.length + 1);
  const shstrtabAt = symtabAt + symtabBytes;
  const sectionsAt = (shstrtabAt + shstrtab.length + 3) & ~3;
  const total = sectionsAt + 4 * 40;
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  bytes.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1]);
  view.setUint16(16, 2, true); // ET_EXEC
  view.setUint16(18, 243, true); // EM_RISCV
  view.setUint32(20, 1, true);
  view.setUint32(24, spec.address, true);
  view.setUint32(28, 52, true); // e_phoff
  view.setUint32(32, sectionsAt, true); // e_shoff
  view.setUint32(36, 1, true); // e_flags: RVC
  view.setUint16(40, 52, true);
  view.setUint16(42, 32, true);
  view.setUint16(44, 1, true);
  view.setUint16(46, 40, true);
  view.setUint16(48, 4, true);
  view.setUint16(50, 3, true);
  // PT_LOAD
  view.setUint32(52, 1, true);
  view.setUint32(56, codeAt, true);
  view.setUint32(60, spec.address, true);
  view.setUint32(64, spec.address, true);
  view.setUint32(68, spec.code.length, true);
  view.setUint32(72, spec.code.length + (spec.bssBytes ?? 0), true);
  view.setUint32(76, 7, true);
  bytes.set(spec.code, codeAt);
  bytes.set(new TextEncoder().encode(strtab), strtabAt);
  names.forEach((name, i) => {
    const at = symtabAt + 16 * (i + 1);
    view.setUint32(at, nameOffsets[i]!, true);
    view.setUint32(at + 4, spec.symbols[name]!, true);
    bytes[at + 12] = 0x10; // STB_GLOBAL, STT_NOTYPE
    view.setUint16(at + 14, 0xfff1, true); // SHN_ABS
  });
  bytes.set(new TextEncoder().encode(shstrtab), shstrtabAt);
  const section = (index: number, name: number, type: number, offset: number, size: number, link: number, entsize: number): void => {
    const at = sectionsAt + 40 * index;
    view.setUint32(at, name, true);
    view.setUint32(at + 4, type, true);
    view.setUint32(at + 16, offset, true);
    view.setUint32(at + 20, size, true);
    view.setUint32(at + 24, link, true);
    view.setUint32(at + 36, entsize, true);
  };
  section(1, 1, 2, symtabAt, symtabBytes, 2, 16); // .symtab, strings in section 2
  section(2, 9, 3, strtabAt, strtab.length, 0, 0); // .strtab
  section(3, 17, 3, shstrtabAt, shstrtab.length, 0, 0); // .shstrtab
  return bytes;
}

/** Instruction words as little-endian bytes. */
export function wordsToBytes(words: number[]): Uint8Array {
  const bytes = new Uint8Array(4 * words.length);
  const view = new DataView(bytes.buffer);
  words.forEach((word, i) => view.setUint32(4 * i, word >>> 0, true));
  return bytes;
}
