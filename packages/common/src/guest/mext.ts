/*
 * The M extension's multiply-high, divide and remainder (RISC-V Unprivileged ISA ch. 7),
 * including division by zero and overflow results (table 7.1). Shared by the interpreter and the
 * compiled blocks, which call them by name. Operands and results are signed 32-bit values.
 */

/** High 32 bits of the unsigned 64-bit product, from 16-bit halves (exact in doubles). */
export function mulhu(a: number, b: number): number {
  const aLow = a & 0xffff;
  const aHigh = a >>> 16;
  const bLow = b & 0xffff;
  const bHigh = b >>> 16;
  const low = aLow * bLow;
  const mid1 = aHigh * bLow;
  const mid2 = aLow * bHigh;
  const carry = ((low >>> 16) + (mid1 & 0xffff) + (mid2 & 0xffff)) >>> 16;
  return (aHigh * bHigh + (mid1 >>> 16) + (mid2 >>> 16) + carry) | 0;
}

/** mulh: signed × signed. */
export function mulh(a: number, b: number): number {
  return (mulhu(a, b) - (a < 0 ? b : 0) - (b < 0 ? a : 0)) | 0;
}

/** mulhsu: signed × unsigned. */
export function mulhsu(a: number, b: number): number {
  return (mulhu(a, b) - (a < 0 ? b : 0)) | 0;
}

export function div(a: number, b: number): number {
  if (b === 0) return -1;
  if (a === -0x8000_0000 && b === -1) return a;
  return (a / b) | 0;
}

export function divu(a: number, b: number): number {
  if (b === 0) return -1;
  return ((a >>> 0) / (b >>> 0)) | 0;
}

export function rem(a: number, b: number): number {
  if (b === 0) return a;
  if (a === -0x8000_0000 && b === -1) return 0;
  return (a % b) | 0;
}

export function remu(a: number, b: number): number {
  if (b === 0) return a;
  return ((a >>> 0) % (b >>> 0)) | 0;
}

/** The M-extension operation selected by funct3 (mul is Math.imul). */
export function mulDiv(f3: number, a: number, b: number): number {
  switch (f3) {
    case 0:
      return Math.imul(a, b);
    case 1:
      return mulh(a, b);
    case 2:
      return mulhsu(a, b);
    case 3:
      return mulhu(a, b);
    case 4:
      return div(a, b);
    case 5:
      return divu(a, b);
    case 6:
      return rem(a, b);
    default:
      return remu(a, b);
  }
}

/** The names compiled code calls, by funct3 (index 0, mul, is inlined as Math.imul). */
export const MEXT_FUNCTION_NAMES = ['', 'mulh', 'mulhsu', 'mulhu', 'div', 'divu', 'rem', 'remu'] as const;
export const MEXT_FUNCTIONS = [mulh, mulhsu, mulhu, div, divu, rem, remu];
