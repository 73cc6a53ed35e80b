// Exempt from Biome's noNonNullAssertion (biome.json): the block compiler: a parcel passed the frame check, a
// block holds at least one instruction and a page index is below the page count, so each `!` holds by
// construction, on the per-instruction compile and dispatch path.
import { assert } from '../errors.ts';
import { PAGE_SHIFT, RAM_BASE } from './addressMap.ts';
import type { CodeCache, GuestMemory } from './memory.ts';
import { MEXT_FUNCTIONS, MEXT_FUNCTION_NAMES } from './mext.ts';
import { RVC_EXPANSION } from './rvc.ts';
import { PTE_PRESENT, PTE_STORE_FAST_MASK, PTE_STORE_FAST_VALUE } from './shadowPageTable.ts';

/*
 * The basic-block compiler: the CPU's fast engine (design.md §5: ≈2× the interpreter). A block is
 * the straight-line run of instructions from a start pc up to and including the first branch or
 * jump, never crossing a 4 KiB page and at most BLOCK_INSTRUCTIONS_MAX long. A hot block is
 * compiled into a region: one JS function (`new Function`) holding the block and the blocks of its
 * page that control is likely to reach from it and that have run (BlockCache says which: branch
 * and jump targets, and the return point of a call). The function keeps the registers in locals,
 * runs block after block while control stays among its blocks (a `switch` on the pc, or straight
 * on into the next case when that is where a block goes), performs every load and store with the interpreter's inline page-entry
 * check and the interpreter's slow paths, writes the registers back on the way out, and returns
 * how many instructions it executed.
 *
 * The interpreter (cpu.ts) stays the reference: everything here must be observably identical,
 * down to the instruction at which a tracking fault or a trap happens and the counters it sees.
 * What cannot be compiled (SYSTEM, FENCE, FENCE.I, illegal encodings, a 32-bit instruction whose
 * halves lie in two pages) ends a block before it and is executed by the interpreter, one
 * instruction at a time. Compressed instructions are compiled as their 32-bit expansions (rvc.ts)
 * with their own length; AMOs call the interpreter's slow path from inside the block.
 *
 * Return protocol of a region function `(remaining) => number`, entered at `cpu.pc` (one of its
 * blocks), leaving the next pc in `cpu.pc`:
 *   k > 0   executed k instructions; nothing special happened: control left the region, the
 *           next block did not fit the budget, or a store wrote the region's own page (the
 *           next fetch must see the new code);
 *   0       `remaining` is shorter than the first block: the caller finishes the slice on the
 *           interpreter, so a slice still ends on its exact instruction;
 *   ~k < 0  executed k instructions and stopped where the interpreter checks `exitLoop` (a trap,
 *           or a store that took the slow path): the caller leaves its loop when it is set.
 */

/** A compiled region (see above). */
export type BlockFunction = (remaining: number) => number;

/** Longest block: longer ones save little and leave more of each slice's tail to the interpreter. */
export const BLOCK_INSTRUCTIONS_MAX = 64;
/** Compiled blocks kept before the cache starts again from empty (each is a V8 function). */
export const CACHED_BLOCKS_MAX = 16_384;
/**
 * Entries into a block before it is compiled; until then the interpreter runs it. Compiling costs
 * about as much as interpreting a thousand instructions, which code run once (start-up, the ISA
 * tests) would never win back.
 */
export const BLOCK_ENTRIES_BEFORE_COMPILE = 16;
/**
 * Bounds of a region. Larger regions keep control inside longer (each call of a region from the
 * CPU's loop is a megamorphic call, ~30 ns here, against a few ns per guest instruction), but cost
 * more to compile, a block may be compiled into several regions, and V8 runs a new region slowly
 * until it has optimised it (longer for a larger one), and optimises it only for the code it has
 * seen run: a rarely taken block inside a region deoptimises all of it when it runs, which is why
 * only blocks that have run are included. On kvnet's request path (short blocks between calls,
 * returns and MMIO) regions of loops alone averaged 5.3 instructions a call, 675 calls a GET; with
 * these bounds 20 and 176, with 16 and 256 24 and 152, with 32 and 512 26 and 139. But the larger
 * bounds cost web its first seconds (46–87 M instructions/s in the first second against ~670 for
 * loop-only regions, 320–370 with these) and 0.79× of its MIPS in `hbft bench cpu` (these: 1.11×).
 */
export const REGION_BLOCKS_MAX = 8;
export const REGION_INSTRUCTIONS_MAX = 128;
/**
 * A page whose blocks were dropped this often is left to the interpreter: it holds data written
 * next to running code (as in the ISA tests), and recompiling after every store would cost far
 * more than interpreting. Counted since the last flush.
 */
export const PAGE_CODE_WRITES_MAX = 8;

/** Instructions start at any 2-byte boundary (IALIGN = 16 with C): blocks are indexed by parcel. */
const PARCELS_PER_PAGE = 1 << (PAGE_SHIFT - 1);
/** XOR with this turns a RAM address into its offset (RAM_BASE is 0x8000_0000). */
const RAM_XOR = RAM_BASE | 0;

/** storeInBlock results. */
export const STORE_CONTINUE = 0;
/** The store trapped: the pc is at the handler. */
export const STORE_TRAPPED = 1;
/** A device store or a halt asked the loop to stop (`exitLoop`). */
export const STORE_EXIT = 2;
/** The store wrote the page the running region came from. */
export const STORE_CODE_CHANGED = 3;

/**
 * What compiled code calls on the CPU (implemented by Cpu): the interpreter's slow paths, entered
 * with the pc of the instruction and the slice's remaining count including it, so that a trap and
 * the counters a device reads are exactly the interpreter's.
 */
export interface BlockRuntime {
  pc: number;
  /** Set by a load that trapped; the block clears it. */
  trapped: boolean;
  /** What the last atomicInBlock wrote to rd. */
  atomicValue: number;
  loadInBlock(pc: number, remaining: number, address: number, f3: number, inst: number): number;
  storeInBlock(pc: number, remaining: number, address: number, f3: number, value: number, inst: number): number;
  /** An AMO, LR.W or SC.W; returns a storeInBlock result. */
  atomicInBlock(pc: number, remaining: number, inst: number, address: number, operand: number): number;
}

/** How an instruction takes part in a block. */
const KIND_STOP = 0;
const KIND_PLAIN = 1;
const KIND_END = 2;

/** Whether `inst` can be compiled, and whether it ends a block (mirrors the interpreter's decode). */
export function blockKind(inst: number): number {
  const f3 = (inst >> 12) & 7;
  switch (inst & 0x7f) {
    case 0x13:
      if (f3 === 1) return inst >>> 25 === 0 ? KIND_PLAIN : KIND_STOP;
      if (f3 === 5) return inst >>> 25 === 0 || inst >>> 25 === 0x20 ? KIND_PLAIN : KIND_STOP;
      return KIND_PLAIN;
    case 0x33: {
      const f7 = inst >>> 25;
      if (f7 === 0 || f7 === 1) return KIND_PLAIN;
      return f7 === 0x20 && (f3 === 0 || f3 === 5) ? KIND_PLAIN : KIND_STOP;
    }
    case 0x03:
      return f3 === 3 || f3 >= 6 ? KIND_STOP : KIND_PLAIN;
    case 0x23:
      return f3 <= 2 ? KIND_PLAIN : KIND_STOP;
    case 0x37:
    case 0x17:
      return KIND_PLAIN;
    case 0x63:
      return f3 === 2 || f3 === 3 ? KIND_STOP : KIND_END;
    case 0x6f:
      return KIND_END;
    case 0x67:
      return f3 === 0 ? KIND_END : KIND_STOP;
    case 0x2f:
      // AMO: the slow path decides the rest (an illegal funct5 traps there).
      return f3 === 2 ? KIND_PLAIN : KIND_STOP;
    default:
      // SYSTEM, MISC-MEM (fence, fence.i) and everything illegal: the interpreter's.
      return KIND_STOP;
  }
}

/** A block's instructions, read from RAM at `startPc`: 32-bit forms (compressed ones expanded). */
export interface BlockWords {
  startPc: number;
  words: Int32Array;
  /** The address of each instruction. */
  pcs: Int32Array;
  /** The address after the last instruction. */
  endPc: number;
}

/**
 * The instruction at `pc` (in a present RAM page) in its 32-bit form: a compressed parcel expanded
 * (0 when reserved), a 32-bit one whole, or 0 when its second half lies in the next page (the
 * interpreter's: that page needs its own fetch check).
 */
function instructionAt(mu16: Uint16Array, pc: number): number {
  const parcel = (pc ^ RAM_XOR) >>> 1;
  const low = mu16[parcel]!;
  if ((low & 3) !== 3) return RVC_EXPANSION[low]!;
  if ((pc & ((1 << PAGE_SHIFT) - 1)) === (1 << PAGE_SHIFT) - 2) return 0;
  return low | (mu16[parcel + 1]! << 16);
}

/** The length in bytes of the instruction at `pc`: 2 for a compressed parcel, else 4 (§1.5). */
function instructionBytes(mu16: Uint16Array, pc: number): number {
  return (mu16[(pc ^ RAM_XOR) >>> 1]! & 3) !== 3 ? 2 : 4;
}

/** How many instructions the block at `startPc` (in a present RAM page) has; 0 when none can start there. */
export function blockLength(mu16: Uint16Array, startPc: number): number {
  let length = 0;
  let pc = startPc;
  for (;;) {
    const kind = blockKind(instructionAt(mu16, pc));
    if (kind === KIND_STOP) return length;
    length++;
    pc = (pc + instructionBytes(mu16, pc)) | 0;
    if (kind === KIND_END || length === BLOCK_INSTRUCTIONS_MAX || (pc & ((1 << PAGE_SHIFT) - 1)) === 0) return length;
  }
}

/** Reads the block that starts at `startPc` (a present RAM page); empty when none can start there. */
export function scanBlock(mu16: Uint16Array, startPc: number): BlockWords {
  const length = blockLength(mu16, startPc);
  const words = new Int32Array(length);
  const pcs = new Int32Array(length);
  let pc = startPc;
  for (let k = 0; k < length; k++) {
    words[k] = instructionAt(mu16, pc);
    pcs[k] = pc;
    pc = (pc + instructionBytes(mu16, pc)) | 0;
  }
  return { startPc, words, pcs, endPc: pc };
}

function literal(value: number): string {
  const v = value | 0;
  return v < 0 ? `(${v})` : `${v}`;
}

function hex(value: number): string {
  return (value >>> 0).toString(16).padStart(8, '0');
}

/** A register operand: its local, or the constant for x0. */
function reg(r: number): string {
  return r === 0 ? '0' : `r${r}`;
}

/** Registers an instruction reads, as a bit mask (x0 excluded). */
function readMask(inst: number): number {
  const opcode = inst & 0x7f;
  let mask = 0;
  if (opcode !== 0x37 && opcode !== 0x17 && opcode !== 0x6f) mask |= 1 << ((inst >> 15) & 31);
  if (opcode === 0x33 || opcode === 0x23 || opcode === 0x63 || opcode === 0x2f) mask |= 1 << ((inst >> 20) & 31);
  return mask & ~1;
}

/** Registers an instruction writes, as a bit mask (x0 excluded). */
function writeMask(inst: number): number {
  const opcode = inst & 0x7f;
  return opcode === 0x23 || opcode === 0x63 ? 0 : (1 << ((inst >> 7) & 31)) & ~1;
}

/** The target of a branch (B-type immediate) or, for JAL, of the jump (J-type) at `pc`. */
function branchTarget(inst: number, pc: number): number {
  if ((inst & 0x7f) === 0x6f) {
    return (pc + (((inst >> 31) << 20) | (inst & 0xff000) | (((inst >> 20) & 1) << 11) | (((inst >> 21) & 0x3ff) << 1))) | 0;
  }
  return (pc + (((inst >> 31) << 12) | (((inst >> 7) & 1) << 11) | (((inst >> 25) & 0x3f) << 5) | (((inst >> 8) & 0xf) << 1))) | 0;
}

/*
 * Generated code. A region function looks like this (registers r1..r31 are locals; `pc` is the
 * start of the block being run, `c` the instructions completed in this call, `e` the return value):
 *
 *   return (function region_80001000(n) {
 *     let r10 = x[10], r11 = x[11];
 *     let pc = cpu.pc, c = 0, e = 0, a = 0, v = 0, s = 0;
 *     exit: {
 *       dispatch: for (;;) {
 *         switch (pc) {
 *           case -2147479552: {              // a block of 3 instructions at 80001000
 *             if (c > n - 3) { e = c; break exit; }
 *             r10 = (r10 + 1) | 0; ...
 *             c += 3; pc = r11 !== 0 ? -2147479552 : -2147479540; continue dispatch;
 *           }
 *           default: e = c; break exit;      // not a block of this region (or another page)
 *         }
 *       }
 *     }
 *     x[10] = r10; x[11] = r11; cpu.pc = pc; return e;
 *   });
 *
 * Every way out goes through the one exit, which writes back every register the region writes
 * (all were loaded on entry, so the unchanged ones are written back unchanged). A region of one
 * block has no dispatch loop: it checks its entry pc and budget, runs, and leaves. The function
 * is parenthesised so that V8 compiles it at once rather than parsing it twice.
 */

/** What the code of each instruction needs to know about its block. */
interface BlockContext {
  startPc: number;
  /** Each instruction's address, and the address after the last. */
  pcs: Int32Array;
  endPc: number;
  count: number;
  /** The block branches back to its own start: its body loops in place. */
  isLoop: boolean;
  /** Goes on to the block at `pc`: through the region's dispatch, or out of a one-block region. */
  leave: string;
  /** The start of the block whose case follows this one in the region's source (-1: none), which control may fall into. */
  fallThroughPc: number;
}

/** Goes on to the block at the fixed address `target`: falls into the next case when it starts there. */
function goTo(context: BlockContext, target: number): string {
  return target === context.fallThroughPc && target !== -1 ? `pc = ${literal(target)};` : `pc = ${literal(target)}; ${context.leave}`;
}

/** The slice's remaining count, including instruction k. */
function remainingAt(k: number): string {
  return `n - c - ${k}`;
}

/** `rd = expr;`, or nothing for x0 (every such expression is free of side effects). */
function assign(rd: number, expr: string): string {
  return rd === 0 ? '' : `r${rd} = ${expr};`;
}

function opImmSource(inst: number, a: string): string {
  const imm = inst >> 20;
  const shamt = imm & 31;
  switch ((inst >> 12) & 7) {
    case 0:
      return a === '0' ? literal(imm) : `(${a} + ${literal(imm)}) | 0`;
    case 1:
      return `${a} << ${shamt}`;
    case 2:
      return `${a} < ${literal(imm)} ? 1 : 0`;
    case 3:
      return `${a} >>> 0 < ${imm >>> 0} ? 1 : 0`;
    case 4:
      return `${a} ^ ${literal(imm)}`;
    case 5:
      return inst >>> 25 === 0 ? `(${a} >>> ${shamt}) | 0` : `${a} >> ${shamt}`;
    case 6:
      return `${a} | ${literal(imm)}`;
    default:
      return `${a} & ${literal(imm)}`;
  }
}

function opSource(inst: number, a: string, b: string): string {
  const f3 = (inst >> 12) & 7;
  const f7 = inst >>> 25;
  if (f7 === 1) return f3 === 0 ? `Math.imul(${a}, ${b})` : `${MEXT_FUNCTION_NAMES[f3]}(${a}, ${b})`;
  if (f7 === 0x20) return f3 === 0 ? `(${a} - ${b}) | 0` : `${a} >> (${b} & 31)`;
  switch (f3) {
    case 0:
      return `(${a} + ${b}) | 0`;
    case 1:
      return `${a} << (${b} & 31)`;
    case 2:
      return `${a} < ${b} ? 1 : 0`;
    case 3:
      return `${a} >>> 0 < ${b} >>> 0 ? 1 : 0`;
    case 4:
      return `${a} ^ ${b}`;
    case 5:
      return `(${a} >>> (${b} & 31)) | 0`;
    case 6:
      return `${a} | ${b}`;
    default:
      return `${a} & ${b}`;
  }
}

function branchCondition(inst: number, a: string, b: string): string {
  switch ((inst >> 12) & 7) {
    case 0:
      return `${a} === ${b}`;
    case 1:
      return `${a} !== ${b}`;
    case 4:
      return `${a} < ${b}`;
    case 5:
      return `${a} >= ${b}`;
    case 6:
      return `${a} >>> 0 < ${b} >>> 0`;
    default:
      return `${a} >>> 0 >= ${b} >>> 0`;
  }
}

const RAM_XOR_LITERAL = literal(RAM_XOR);

/** LOAD: PRESENT and natural alignment read RAM directly; anything else is loadSlow. */
function loadSource(inst: number, pc: number, k: number): string {
  const rd = (inst >> 7) & 31;
  const f3 = (inst >> 12) & 7;
  let fast = `(frames[a >>> 12] & ${PTE_PRESENT}) !== 0`;
  let access: string;
  switch (f3) {
    case 0:
      access = `m8[a ^ ${RAM_XOR_LITERAL}]`;
      break;
    case 4:
      access = `mu8[a ^ ${RAM_XOR_LITERAL}]`;
      break;
    case 1:
      fast += ' && (a & 1) === 0';
      access = `m16[(a ^ ${RAM_XOR_LITERAL}) >> 1]`;
      break;
    case 5:
      fast += ' && (a & 1) === 0';
      access = `mu16[(a ^ ${RAM_XOR_LITERAL}) >> 1]`;
      break;
    default:
      fast += ' && (a & 3) === 0';
      access = `m32[(a ^ ${RAM_XOR_LITERAL}) >> 2]`;
      break;
  }
  // A trap leaves with the pc at the handler: a stop point.
  const slow =
    `v = cpu.loadInBlock(${literal(pc)}, ${remainingAt(k)}, a, ${f3}, ${literal(inst)}); ` +
    `if (cpu.trapped) { cpu.trapped = false; pc = cpu.pc; e = ~(c + ${k + 1}); break exit; }`;
  const address = `a = (${reg((inst >> 15) & 31)} + ${literal(inst >> 20)}) | 0;\n`;
  if (rd === 0) return `${address}if (!(${fast})) { ${slow} }`;
  return `${address}if (${fast}) r${rd} = ${access}; else { ${slow} r${rd} = v; }`;
}

/**
 * STORE: WRITABLE | DIRTY without WATCHED, CODE or RESERVED, and natural alignment, write RAM directly;
 * anything else is storeSlow (faults, clean writes, devices, writes to code or to the LR.W reservation).
 */
function storeSource(inst: number, pc: number, next: number, k: number): string {
  const f3 = (inst >> 12) & 7;
  const value = reg((inst >> 20) & 31);
  const offset = ((inst >> 25) << 5) | ((inst >> 7) & 31);
  let fast = `(frames[a >>> 12] & ${PTE_STORE_FAST_MASK}) === ${PTE_STORE_FAST_VALUE}`;
  let write: string;
  if (f3 === 0) {
    write = `m8[a ^ ${RAM_XOR_LITERAL}] = ${value};`;
  } else if (f3 === 1) {
    fast += ' && (a & 1) === 0';
    write = `m16[(a ^ ${RAM_XOR_LITERAL}) >> 1] = ${value};`;
  } else {
    fast += ' && (a & 3) === 0';
    write = `m32[(a ^ ${RAM_XOR_LITERAL}) >> 2] = ${value};`;
  }
  // A trap leaves at the handler, a device store or halt (exitLoop) and a write to this very code
  // leave after the store; the first two are stop points.
  return (
    `a = (${reg((inst >> 15) & 31)} + ${literal(offset)}) | 0;\n` +
    `if (${fast}) ${write} else { ` +
    `s = cpu.storeInBlock(${literal(pc)}, ${remainingAt(k)}, a, ${f3}, ${value}, ${literal(inst)}); ` +
    `if (s !== ${STORE_CONTINUE}) { ` +
    `if (s === ${STORE_TRAPPED}) { pc = cpu.pc; e = ~(c + ${k + 1}); } ` +
    `else { pc = ${literal(next)}; e = s === ${STORE_EXIT} ? ~(c + ${k + 1}) : c + ${k + 1}; } ` +
    'break exit; } }'
  );
}

/**
 * AMO, LR.W, SC.W: always the interpreter's slow path (GuestMemory's store path, the reservation);
 * rd is written unless it trapped, and the block leaves where a slow store would.
 */
function atomicSource(inst: number, pc: number, next: number, k: number): string {
  const rd = (inst >> 7) & 31;
  const result = assign(rd, 'cpu.atomicValue');
  return (
    `s = cpu.atomicInBlock(${literal(pc)}, ${remainingAt(k)}, ${literal(inst)}, ${reg((inst >> 15) & 31)}, ${reg((inst >> 20) & 31)});\n` +
    `if (s !== ${STORE_CONTINUE}) { ` +
    `if (s === ${STORE_TRAPPED}) { pc = cpu.pc; e = ~(c + ${k + 1}); } ` +
    `else { ${result} pc = ${literal(next)}; e = s === ${STORE_EXIT} ? ~(c + ${k + 1}) : c + ${k + 1}; } ` +
    `break exit; }\n${result}`
  );
}

/**
 * The block's last instruction when it is a branch or jump: where the region goes next. Targets
 * are always even and IALIGN is 16, so none raises instruction-address-misaligned (§2.5, cpu.ts).
 */
function controlSource(context: BlockContext, inst: number, pc: number): string {
  const rd = (inst >> 7) & 31;
  const a = reg((inst >> 15) & 31);
  const { count } = context;
  const next = literal(context.endPc);
  switch (inst & 0x7f) {
    case 0x63: {
      const condition = branchCondition(inst, a, reg((inst >> 20) & 31));
      const target = branchTarget(inst, pc);
      if (context.isLoop) {
        // Round again in place while the budget holds a whole pass; else back through dispatch.
        return `c += ${count};\nif (${condition}) { if (c <= n - ${count}) continue; pc = ${literal(target)}; ${context.leave} }\npc = ${next}; ${context.leave}`;
      }
      // Whichever way leads into the next case falls into it; the other goes through the dispatch.
      if (context.endPc === context.fallThroughPc)
        return `c += ${count};\nif (${condition}) { pc = ${literal(target)}; ${context.leave} }\n${goTo(context, context.endPc)}`;
      if (target === context.fallThroughPc)
        return `c += ${count};\nif (!(${condition})) { pc = ${next}; ${context.leave} }\n${goTo(context, target)}`;
      return `c += ${count}; pc = ${condition} ? ${literal(target)} : ${next}; ${context.leave}`;
    }
    case 0x6f: {
      const target = branchTarget(inst, pc);
      const link = assign(rd, next);
      if (context.isLoop) return `${link}\nc += ${count};\nif (c <= n - ${count}) continue;\npc = ${literal(target)}; ${context.leave}`;
      return `${link}\nc += ${count}; ${goTo(context, target)}`;
    }
    default:
      // JALR: the target is computed before rd is written (rd may be rs1).
      return `a = (${a} + ${literal(inst >> 20)}) & -2;\n` + `${assign(rd, next)}\nc += ${count}; pc = a; ${context.leave}`;
  }
}

function instructionSource(context: BlockContext, inst: number, k: number): string {
  const pc = context.pcs[k]!;
  const next = k + 1 < context.count ? context.pcs[k + 1]! : context.endPc;
  const rd = (inst >> 7) & 31;
  switch (inst & 0x7f) {
    case 0x13:
      return assign(rd, opImmSource(inst, reg((inst >> 15) & 31)));
    case 0x33:
      return assign(rd, opSource(inst, reg((inst >> 15) & 31), reg((inst >> 20) & 31)));
    case 0x37:
      return assign(rd, literal(inst & 0xfffff000));
    case 0x17:
      return assign(rd, literal(pc + (inst & 0xfffff000)));
    case 0x03:
      return loadSource(inst, pc, k);
    case 0x23:
      return storeSource(inst, pc, next, k);
    case 0x2f:
      return atomicSource(inst, pc, next, k);
    default:
      return controlSource(context, inst, pc);
  }
}

/** Where a block goes next when the target is fixed: branch target and fall-through, or JAL's target. */
function fixedSuccessors(block: BlockWords): number[] {
  const count = block.words.length;
  const last = block.words[count - 1]!;
  const lastPc = block.pcs[count - 1]!;
  const next = block.endPc;
  switch (last & 0x7f) {
    case 0x63:
      return [branchTarget(last, lastPc), next];
    case 0x6f:
      return [branchTarget(last, lastPc)];
    case 0x67:
      return [];
    default:
      return [next];
  }
}

/**
 * The blocks (the first being the root) that lie on a cycle through the root, or null when the root
 * heads no loop among them. A loop's region keeps only these: control leaving the loop goes back
 * to the caller, and a block off the loop that runs now and then would make V8 deoptimise the
 * region the loop runs in (cfp's inner loops: 0.55-0.64x of loop-only regions with their exits and
 * return points included).
 */
function loopThrough(blocks: BlockWords[]): BlockWords[] | null {
  const root = blocks[0]!.startPc;
  const reachesRoot = new Set<number>();
  for (let changed = true; changed; ) {
    changed = false;
    for (const block of blocks) {
      if (reachesRoot.has(block.startPc)) continue;
      if (fixedSuccessors(block).some((target) => target === root || reachesRoot.has(target))) {
        reachesRoot.add(block.startPc);
        changed = true;
      }
    }
  }
  return reachesRoot.has(root) ? blocks.filter((block) => reachesRoot.has(block.startPc)) : null;
}

/** Fixed successors, and after a call (JAL or JALR that links) the instruction it returns to. */
function likelySuccessors(block: BlockWords): number[] {
  const last = block.words[block.words.length - 1]!;
  const opcode = last & 0x7f;
  const successors = fixedSuccessors(block);
  if ((opcode === 0x6f || opcode === 0x67) && ((last >> 7) & 31) !== 0) successors.push(block.endPc);
  return successors;
}

/** One block's code: a `case` of the region's dispatch, or (`alone`) the whole of a one-block region. */
function blockSource(block: BlockWords, alone: boolean, fallThroughPc: number): string {
  const { startPc, words, pcs, endPc } = block;
  const count = words.length;
  const last = words[count - 1]!;
  const lastOpcode = last & 0x7f;
  const lastPc = pcs[count - 1]!;
  const context: BlockContext = {
    startPc,
    pcs,
    endPc,
    count,
    isLoop: (lastOpcode === 0x63 || lastOpcode === 0x6f) && branchTarget(last, lastPc) === startPc,
    leave: alone ? 'e = c; break exit;' : 'continue dispatch;',
    fallThroughPc: alone ? -1 : fallThroughPc,
  };
  // Alone, the entry pc is checked here instead of by the dispatch (an odd pc, possible only from
  // a restored state, finds the region of the parcel below; the interpreter handles it).
  let body = alone ? `if (pc !== ${literal(startPc)} || n < ${count}) break exit;\n` : `if (c > n - ${count}) { e = c; break exit; }\n`;
  if (context.isLoop) body += 'for (;;) {\n';
  for (let k = 0; k < count; k++) {
    const code = instructionSource(context, words[k]!, k);
    if (code !== '') body += `${code}\n`;
  }
  // Ended by the page edge, the length bound or an instruction left to the interpreter.
  if (blockKind(last) !== KIND_END) body += `c += ${count}; ${goTo(context, endPc)}\n`;
  if (context.isLoop) body += '}\n';
  return alone ? body : `case ${literal(startPc)}: { // ${count} instructions at ${hex(startPc)}\n${body}}\n`;
}

/** The names in scope of generated code, in the order the factory receives them. */
const FACTORY_PARAMETERS = ['cpu', 'x', 'frames', 'm32', 'm16', 'mu16', 'm8', 'mu8', ...MEXT_FUNCTION_NAMES.slice(1)];

/**
 * Generates the body of a factory (parameters FACTORY_PARAMETERS) that returns the function of a
 * region: the given blocks, all in one page, dispatched on the pc (a region of one block needs no
 * dispatch).
 */
export function generateRegionSource(blocks: BlockWords[]): string {
  assert(blocks.length > 0, 'a region has at least one block');
  let read = 0;
  let written = 0;
  let cases = '';
  let instructions = 0;
  // In address order, so that a block's fall-through is often the next case (see goTo).
  const ordered = [...blocks].sort((a, b) => (a.startPc >>> 0) - (b.startPc >>> 0));
  for (let i = 0; i < ordered.length; i++) {
    const block = ordered[i]!;
    assert(block.words.length > 0, 'a block has at least one instruction');
    for (let k = 0; k < block.words.length; k++) {
      read |= readMask(block.words[k]!);
      written |= writeMask(block.words[k]!);
    }
    instructions += block.words.length;
    cases += blockSource(block, blocks.length === 1, i + 1 < ordered.length ? ordered[i + 1]!.startPc : -1);
  }
  let declarations = '';
  let writeBack = '';
  for (let r = 1; r < 32; r++) {
    if ((((read | written) >>> r) & 1) !== 0) declarations += `${declarations === '' ? 'let ' : ', '}r${r} = x[${r}]`;
    if (((written >>> r) & 1) !== 0) writeBack += `x[${r}] = r${r}; `;
  }
  const first = blocks[0]!.startPc;
  return (
    `"use strict";\n// ${blocks.length} blocks, ${instructions} instructions, first at ${hex(first)}\n` +
    `return (function region_${hex(first)}(n) {\n` +
    (declarations === '' ? '' : `${declarations};\n`) +
    'let pc = cpu.pc, c = 0, e = 0, a = 0, v = 0, s = 0;\n' +
    (blocks.length === 1
      ? `exit: {\n${cases}}\n`
      : `exit: {\ndispatch: for (;;) {\nswitch (pc) {\n${cases}default: e = c; break exit;\n}\n}\n}\n`) +
    `${writeBack}cpu.pc = pc;\nreturn e;\n});`
  );
}

/** Compiles a region (see generateRegionSource) bound to one CPU and its memory. */
export function compileRegion(blocks: BlockWords[], runtime: BlockRuntime, registers: Int32Array, memory: GuestMemory): BlockFunction {
  const factory = new Function(...FACTORY_PARAMETERS, generateRegionSource(blocks));
  return factory(
    runtime,
    registers,
    memory.table.entriesByFrame,
    memory.i32,
    memory.i16,
    memory.u16,
    memory.i8,
    memory.u8,
    ...MEXT_FUNCTIONS,
  ) as BlockFunction;
}

/** Counters for benchmarks and tests. */
export interface BlockCacheStats {
  /** Hot blocks compiled, each as the root of its region. */
  blocksCompiled: number;
  /** Compiled blocks in the cache now (a block in two regions counts twice). */
  blocksCached: number;
  /** Pages whose blocks were dropped because the page was written. */
  pagesInvalidated: number;
  /** Times the whole cache was dropped (RAM replaced, or the cache full). */
  flushes: number;
}

/**
 * Compiled code by RAM page, and the bookkeeping that keeps it true to RAM.
 *
 * A block is compiled once it is hot (BLOCK_ENTRIES_BEFORE_COMPILE entries), as the root of its
 * own region. A root that heads a loop through compiled blocks of its page gets that loop alone,
 * which then runs in place with its registers in locals. Any other root gets the blocks of the same
 * page reachable from it through branches and jumps with fixed targets and through calls' return
 * points, each already compiled or entered at least a quarter as often as a root must be (so it
 * has run: a path never taken stays out), up to a loop's head and REGION_BLOCKS_MAX: a
 * function's hot paths run inside one function while cold paths and loops stay out of it. A region
 * is built once; blocks that become hot later are the roots of their own regions, and a block may
 * be in several regions.
 *
 * A page with blocks carries PTE_CODE, so the first write to it reaches `onCodeWrite` through
 * GuestMemory and drops them all. A page rewritten again and again under its running code gets
 * none (PAGE_CODE_WRITES_MAX). The CPU interprets whatever has no block.
 */
export class BlockCache implements CodeCache {
  /** By RAM page, then parcel (2 bytes) within the page: the region whose root block starts there. */
  readonly pages: (BlockFunction[] | undefined)[];
  private readonly memory: GuestMemory;
  private readonly registers: Int32Array;
  private readonly runtime: BlockRuntime;
  private readonly blocksMax: number;
  private readonly entriesBeforeCompile: number;
  /** By RAM page: the number of compiled blocks. */
  private readonly blocksByPage: Uint16Array;
  /** Pages that got blocks since the last flush (each once), so a flush need not scan them all. */
  private readonly pagesWithCode: number[] = [];
  private readonly pageListed: Uint8Array;
  private readonly codeWritesByPage: Uint8Array;
  /** Entries into not-yet-compiled blocks, by RAM page and parcel (allocated per page on first use). */
  private readonly entriesByPage: (Uint8Array | undefined)[];
  /** Per page, 1 at each parcel where a loop's region is rooted (see compileRoot). */
  private readonly loopBlocksByPage: (Uint8Array | undefined)[];
  private cached = 0;
  readonly stats: BlockCacheStats = { blocksCompiled: 0, blocksCached: 0, pagesInvalidated: 0, flushes: 0 };

  constructor(
    memory: GuestMemory,
    registers: Int32Array,
    runtime: BlockRuntime,
    entriesBeforeCompile = BLOCK_ENTRIES_BEFORE_COMPILE,
    blocksMax = CACHED_BLOCKS_MAX,
  ) {
    assert(blocksMax > 0, 'the block cache holds at least one block');
    assert(entriesBeforeCompile >= 0 && entriesBeforeCompile <= 255, 'entry counts fit a byte');
    this.memory = memory;
    this.registers = registers;
    this.runtime = runtime;
    this.entriesBeforeCompile = entriesBeforeCompile;
    this.blocksMax = blocksMax;
    this.pages = new Array<BlockFunction[] | undefined>(memory.pageCount).fill(undefined);
    this.blocksByPage = new Uint16Array(memory.pageCount);
    this.entriesByPage = new Array<Uint8Array | undefined>(memory.pageCount).fill(undefined);
    this.loopBlocksByPage = new Array<Uint8Array | undefined>(memory.pageCount).fill(undefined);
    this.pageListed = new Uint8Array(memory.pageCount);
    this.codeWritesByPage = new Uint8Array(memory.pageCount);
    memory.setCodeCache(this);
  }

  /**
   * Called on entry to `pc` (in a present RAM page) when it has no block: counts the entry and,
   * once the block is hot, compiles its region and returns it; else undefined (the CPU
   * interprets the block).
   */
  enterUncompiled(pc: number): BlockFunction | undefined {
    const page = (pc ^ RAM_XOR) >>> PAGE_SHIFT;
    if (this.codeWritesByPage[page]! >= PAGE_CODE_WRITES_MAX) return undefined;
    let entries = this.entriesByPage[page];
    if (entries === undefined) {
      entries = new Uint8Array(PARCELS_PER_PAGE);
      this.entriesByPage[page] = entries;
    }
    const parcel = (pc >>> 1) & (PARCELS_PER_PAGE - 1);
    const entered = entries[parcel]!;
    if (entered < this.entriesBeforeCompile) {
      entries[parcel] = entered + 1;
      return undefined;
    }
    if (blockLength(this.memory.u16, pc) === 0) return undefined;
    if (this.cached >= this.blocksMax) this.memory.invalidateCode();
    return this.compileRoot(page, pc);
  }

  /** Compiles the region rooted at `pc` and enters it in the page's table. */
  private compileRoot(page: number, pc: number): BlockFunction {
    let table = this.pages[page];
    if (table === undefined) {
      table = new Array<BlockFunction>(PARCELS_PER_PAGE);
      this.pages[page] = table;
      if (this.pageListed[page] === 0) {
        this.pageListed[page] = 1;
        this.pagesWithCode.push(page);
      }
      this.memory.markCode(page);
    }
    const root = scanBlock(this.memory.u16, pc);
    // A loop through compiled blocks runs in place with only its own blocks. Other code gets its
    // likely paths through blocks that have run, up to a loop's head: a loop entered from another
    // region would run there, in code V8 optimised for that region's other paths (cfp's inner
    // loops ran at 0.61-0.73x so). Stopping at every block of a loop instead cost jbb 6-16 %.
    const entries = this.entriesByPage[page];
    let loopBlocks = this.loopBlocksByPage[page];
    const loop = loopThrough(this.reachable(root, table, fixedSuccessors, () => false, loopBlocks, false));
    if (loop !== null) {
      if (loopBlocks === undefined) {
        loopBlocks = new Uint8Array(PARCELS_PER_PAGE);
        this.loopBlocksByPage[page] = loopBlocks;
      }
      loopBlocks[(root.startPc >>> 1) & (PARCELS_PER_PAGE - 1)] = 1;
    }
    const hasRun = (parcel: number): boolean => entries !== undefined && entries[parcel]! >= this.entriesBeforeCompile >> 2;
    const region = loop ?? this.reachable(root, table, likelySuccessors, hasRun, loopBlocks, true);
    const fn = compileRegion(region, this.runtime, this.registers, this.memory);
    // A call with no budget runs only the exit (writing back unchanged registers), so that V8
    // has type feedback for it before it optimises the region, often while inside a long loop;
    // without it every later exit deoptimises the region.
    fn(0);
    table[(pc >>> 1) & (PARCELS_PER_PAGE - 1)] = fn;
    // The cache's bound counts every block compiled, as each costs its own code in every region it is in.
    this.blocksByPage[page] = this.blocksByPage[page]! + region.length;
    this.cached += region.length;
    this.stats.blocksCompiled++;
    this.stats.blocksCached = this.cached;
    return fn;
  }

  /**
   * `root` and the blocks of its page reachable from it, breadth first through `successors`, that
   * are compiled already or that `hasRun` accepts (with `avoidLoops`, not where a loop's region is rooted),
   * within the region's bounds.
   */
  private reachable(
    root: BlockWords,
    table: BlockFunction[],
    successors: (block: BlockWords) => number[],
    hasRun: (parcel: number) => boolean,
    loopBlocks: Uint8Array | undefined,
    avoidLoops: boolean,
  ): BlockWords[] {
    const mu16 = this.memory.u16;
    const blocks = [root];
    const included = new Set<number>([root.startPc]);
    let instructions = root.words.length;
    for (let i = 0; i < blocks.length && blocks.length < REGION_BLOCKS_MAX; i++) {
      for (const target of successors(blocks[i]!)) {
        if (included.has(target) || ((target ^ root.startPc) & ~((1 << PAGE_SHIFT) - 1)) !== 0) continue;
        const parcel = (target >>> 1) & (PARCELS_PER_PAGE - 1);
        if (table[parcel] === undefined && !hasRun(parcel)) continue;
        if (avoidLoops && loopBlocks !== undefined && loopBlocks[parcel] === 1) continue;
        const block = scanBlock(mu16, target);
        if (block.words.length === 0) continue;
        if (blocks.length === REGION_BLOCKS_MAX || instructions + block.words.length > REGION_INSTRUCTIONS_MAX) break;
        included.add(target);
        blocks.push(block);
        instructions += block.words.length;
      }
    }
    return blocks;
  }

  /** Whether the blocks of the page holding `pc` are still cached (false once it was written). */
  hasPage(pc: number): boolean {
    return this.pages[(pc ^ RAM_XOR) >>> PAGE_SHIFT] !== undefined;
  }

  onCodeWrite(page: number): void {
    if (this.pages[page] === undefined) return;
    this.pages[page] = undefined;
    this.loopBlocksByPage[page] = undefined;
    this.cached -= this.blocksByPage[page]!;
    this.blocksByPage[page] = 0;
    const codeWrites = this.codeWritesByPage[page]!;
    if (codeWrites < PAGE_CODE_WRITES_MAX) this.codeWritesByPage[page] = codeWrites + 1;
    this.stats.pagesInvalidated++;
    this.stats.blocksCached = this.cached;
  }

  onCodeInvalidateAll(): void {
    for (const page of this.pagesWithCode) {
      this.pages[page] = undefined;
      this.blocksByPage[page] = 0;
      this.pageListed[page] = 0;
    }
    this.pagesWithCode.length = 0;
    this.codeWritesByPage.fill(0);
    this.entriesByPage.fill(undefined);
    this.loopBlocksByPage.fill(undefined);
    this.cached = 0;
    this.stats.flushes++;
    this.stats.blocksCached = 0;
  }
}
