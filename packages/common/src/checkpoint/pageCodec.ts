// Exempt from Biome's noNonNullAssertion (biome.json): the page codec: every `x[i]!` indexes a page, cache
// slot or word within bounds fixed by the page size, in range by construction, in the per-word page
// encode/decode loop.
import { PAGE_BYTES } from '../guest/addressMap.ts';
import { assert } from '../errors.ts';

/*
 * Page records on the wire. A checkpoint's page data is a sequence of records, each an 8-byte
 * header (u32 page number, u8 encoding, u8 reserved = 0, u16 data length) and its data:
 *   ZERO     the page is all zeroes; no data
 *   RAW      4096 bytes
 *   XOR_RLE  the page XOR the version the backup holds, as word runs: repeated
 *            (u16 zero words, u16 literal words, literal words…) covering all 1024 words
 * XOR_RLE is used only when the primary knows what the backup holds (its delta cache), and only
 * when shorter than RAW. This is Remus's page compression (design.md §7), at 32-bit granularity.
 */
export const ENCODING_ZERO = 0;
export const ENCODING_RAW = 1;
export const ENCODING_XOR_RLE = 2;
export const PAGE_RECORD_HEADER_BYTES = 8;
const PAGE_WORDS = PAGE_BYTES / 4;
/** The most a record can take: header plus a raw page. */
export const PAGE_RECORD_BYTES_MAX = PAGE_RECORD_HEADER_BYTES + PAGE_BYTES;

export interface EncodingCounts {
  zero: number;
  raw: number;
  xorRle: number;
  /** Bytes of page data before encoding (4096 per page). */
  rawBytes: number;
  /** Bytes of records written (headers included). */
  encodedBytes: number;
}

export function emptyEncodingCounts(): EncodingCounts {
  return { zero: 0, raw: 0, xorRle: 0, rawBytes: 0, encodedBytes: 0 };
}

/**
 * The primary's copy of what the backup holds for recently sent pages: a fixed pool of page
 * slots replaced with the CLOCK algorithm. Cleared whenever the backup may hold something else
 * (a new connection, a full resynchronisation).
 */
export class DeltaCache {
  readonly capacityPages: number;
  private readonly data32: Int32Array;
  private readonly slotPage: Int32Array;
  private readonly referenced: Uint8Array;
  private readonly slotOf = new Map<number, number>();
  private hand = 0;

  constructor(capacityPages: number) {
    this.capacityPages = capacityPages;
    this.data32 = new Int32Array(capacityPages * PAGE_WORDS);
    this.slotPage = new Int32Array(capacityPages).fill(-1);
    this.referenced = new Uint8Array(capacityPages);
  }

  clear(): void {
    this.slotOf.clear();
    this.slotPage.fill(-1);
    this.referenced.fill(0);
  }

  /** Word offset of the cached copy of `page`, or -1. */
  lookup(page: number): number {
    const slot = this.slotOf.get(page);
    if (slot === undefined) return -1;
    this.referenced[slot] = 1;
    return slot * PAGE_WORDS;
  }

  words(): Int32Array {
    return this.data32;
  }

  /** Records that the backup now holds the 1024 words at `source[sourceWord]` for `page`. */
  store(page: number, source: Int32Array, sourceWord: number): void {
    if (this.capacityPages === 0) return;
    let slot = this.slotOf.get(page);
    if (slot === undefined) {
      while (this.referenced[this.hand] === 1) {
        this.referenced[this.hand] = 0;
        this.hand = (this.hand + 1) % this.capacityPages;
      }
      slot = this.hand;
      this.hand = (this.hand + 1) % this.capacityPages;
      const evicted = this.slotPage[slot]!;
      if (evicted >= 0) this.slotOf.delete(evicted);
      this.slotPage[slot] = page;
      this.slotOf.set(page, slot);
    }
    this.referenced[slot] = 1;
    this.data32.set(source.subarray(sourceWord, sourceWord + PAGE_WORDS), slot * PAGE_WORDS);
  }
}

/** A reusable output buffer for page records (4-byte aligned, so records can be written as words). */
export class PageRecordWriter {
  readonly bytes: Uint8Array;
  readonly words: Int32Array;
  readonly view: DataView;
  offset = 0;

  constructor(capacityBytes: number) {
    assert(capacityBytes % 4 === 0, 'record buffer is whole words');
    this.bytes = new Uint8Array(capacityBytes);
    this.words = new Int32Array(this.bytes.buffer);
    this.view = new DataView(this.bytes.buffer);
  }

  get free(): number {
    return this.bytes.length - this.offset;
  }

  reset(): void {
    this.offset = 0;
  }

  /** The records written so far. */
  written(): Uint8Array {
    return this.bytes.subarray(0, this.offset);
  }
}

/** Words compared before a delta is tried: one every SAMPLE_STRIDE words of the page. */
const SAMPLE_STRIDE = 64;
const SAMPLES = PAGE_WORDS / SAMPLE_STRIDE;

/**
 * Encodes pages into records. One encoder per backup connection: it owns the delta cache that
 * says what that backup holds. Nothing is allocated per page.
 */
export class PageEncoder {
  readonly counts = emptyEncodingCounts();
  private readonly cache: DeltaCache | null;

  constructor(cache: DeltaCache | null) {
    this.cache = cache;
  }

  resetCounts(): void {
    Object.assign(this.counts, emptyEncodingCounts());
  }

  /**
   * Encodes the page whose 1024 words start at `source[sourceWord]` as a record in `out`, which
   * must have PAGE_RECORD_BYTES_MAX bytes free.
   */
  encode(page: number, source: Int32Array, sourceWord: number, out: PageRecordWriter): void {
    assert(out.free >= PAGE_RECORD_BYTES_MAX, 'room for a whole record');
    const offset = out.offset;
    const dataWord = (offset + PAGE_RECORD_HEADER_BYTES) >>> 2;
    this.counts.rawBytes += PAGE_BYTES;
    let nonZero = false;
    for (let i = 0; i < PAGE_WORDS; i++) {
      if (source[sourceWord + i] !== 0) {
        nonZero = true;
        break;
      }
    }
    let encoding = ENCODING_ZERO;
    let length = 0;
    if (nonZero) {
      const base = this.cache === null ? -1 : this.cache.lookup(page);
      const cached = this.cache?.words();
      const deltaWords =
        base >= 0 && worthDelta(source, sourceWord, cached!, base)
          ? encodeXorRle(source, sourceWord, cached!, base, out.words, dataWord)
          : PAGE_WORDS;
      if (deltaWords < PAGE_WORDS) {
        encoding = ENCODING_XOR_RLE;
        length = deltaWords * 4;
      } else {
        encoding = ENCODING_RAW;
        length = PAGE_BYTES;
        out.words.set(source.subarray(sourceWord, sourceWord + PAGE_WORDS), dataWord);
      }
    }
    this.cache?.store(page, source, sourceWord);
    out.view.setUint32(offset, page, true);
    out.view.setUint8(offset + 4, encoding);
    out.view.setUint8(offset + 5, 0);
    out.view.setUint16(offset + 6, length, true);
    out.offset = offset + PAGE_RECORD_HEADER_BYTES + length;
    if (encoding === ENCODING_ZERO) this.counts.zero++;
    else if (encoding === ENCODING_RAW) this.counts.raw++;
    else this.counts.xorRle++;
    this.counts.encodedBytes += PAGE_RECORD_HEADER_BYTES + length;
  }
}

/**
 * False when every sampled word differs from the cached copy: the page changed throughout (a
 * sweep over an array), a delta would save little or nothing, and trying it would cost a full
 * pass. A page that changed in a few places shows unchanged words among the samples.
 */
function worthDelta(words: Int32Array, at: number, cached: Int32Array, base: number): boolean {
  for (let k = 0; k < SAMPLES; k++) {
    const i = k * SAMPLE_STRIDE;
    if (words[at + i] === cached[base + i]) return true;
  }
  return false;
}

/**
 * Writes the XOR-RLE form of words[at..] against cached[base..] into out[outAt..] in one pass;
 * returns its length in words, or PAGE_WORDS as soon as it would not be shorter than the page
 * (out may then hold a partial encoding, which the caller overwrites with the raw page).
 */
function encodeXorRle(words: Int32Array, at: number, cached: Int32Array, base: number, out: Int32Array, outAt: number): number {
  let n = 0;
  let i = 0;
  while (i < PAGE_WORDS) {
    const runStart = i;
    while (i < PAGE_WORDS && words[at + i] === cached[base + i]) i++;
    if (i === PAGE_WORDS) break;
    const zeros = i - runStart;
    const header = n++;
    const literalStart = i;
    // A literal run ends at two equal words in a row (one alone is cheaper kept inline).
    while (i < PAGE_WORDS) {
      const x = words[at + i]! ^ cached[base + i]!;
      if (x === 0 && (i + 1 === PAGE_WORDS || words[at + i + 1] === cached[base + i + 1])) break;
      if (n + 1 >= PAGE_WORDS) return PAGE_WORDS;
      out[outAt + n++] = x;
      i++;
    }
    // Run header: u16 zero words then u16 literal words, little-endian in one word.
    out[outAt + header] = zeros | ((i - literalStart) << 16);
  }
  return n;
}

/** `reason` names the first malformed record whenever `ok` is false. */
export type PageRecordsCheck = { ok: true; reason?: undefined; pages: number } | { ok: false; reason: string; pages: number };

/**
 * Validates a buffer of page records without applying anything: every header, length and
 * XOR-RLE run is checked, so that applying afterwards cannot fail half-way.
 */
export function checkPageRecords(records: Uint8Array, pageCount: number): PageRecordsCheck {
  const view = new DataView(records.buffer, records.byteOffset, records.byteLength);
  let offset = 0;
  let pages = 0;
  while (offset < records.length) {
    if (offset + PAGE_RECORD_HEADER_BYTES > records.length) return { ok: false, reason: 'truncated page record header', pages };
    const page = view.getUint32(offset, true);
    const encoding = view.getUint8(offset + 4);
    const length = view.getUint16(offset + 6, true);
    const dataAt = offset + PAGE_RECORD_HEADER_BYTES;
    if (page >= pageCount) return { ok: false, reason: `page ${page} is beyond guest memory (${pageCount} pages)`, pages };
    if (view.getUint8(offset + 5) !== 0) return { ok: false, reason: 'reserved byte of a page record is not zero', pages };
    if (dataAt + length > records.length) return { ok: false, reason: `page ${page} record runs past the end of the data`, pages };
    if (encoding === ENCODING_ZERO) {
      if (length !== 0) return { ok: false, reason: `zero page ${page} carries data`, pages };
    } else if (encoding === ENCODING_RAW) {
      if (length !== PAGE_BYTES) return { ok: false, reason: `raw page ${page} has ${length} bytes`, pages };
    } else if (encoding === ENCODING_XOR_RLE) {
      const reason = checkXorRle(view, dataAt, length);
      if (reason !== null) return { ok: false, reason: `page ${page}: ${reason}`, pages };
    } else {
      return { ok: false, reason: `page ${page} has unknown encoding ${encoding}`, pages };
    }
    offset = dataAt + length;
    pages++;
  }
  return { ok: true, pages };
}

function checkXorRle(view: DataView, at: number, length: number): string | null {
  if (length % 4 !== 0) return 'XOR-RLE data is not whole words';
  let word = 0;
  let offset = at;
  const end = at + length;
  while (offset < end) {
    if (offset + 4 > end) return 'truncated XOR-RLE run';
    const zeros = view.getUint16(offset, true);
    const literals = view.getUint16(offset + 2, true);
    offset += 4 + literals * 4;
    word += zeros + literals;
    if (offset > end || word > PAGE_WORDS) return 'XOR-RLE runs overflow the page';
  }
  return word === PAGE_WORDS || (word < PAGE_WORDS && offset === end) ? null : 'XOR-RLE runs do not cover the page';
}

/** Applies checked records to guest RAM (`ram` is the whole of it); `onPage` hears each page. */
export function applyPageRecords(records: Uint8Array, ram: Uint8Array, onPage?: (page: number) => void): number {
  const view = new DataView(records.buffer, records.byteOffset, records.byteLength);
  const ram32 = new Int32Array(ram.buffer, ram.byteOffset, ram.byteLength >>> 2);
  let offset = 0;
  let pages = 0;
  while (offset < records.length) {
    const page = view.getUint32(offset, true);
    const encoding = view.getUint8(offset + 4);
    const length = view.getUint16(offset + 6, true);
    const dataAt = offset + PAGE_RECORD_HEADER_BYTES;
    const pageAt = page * PAGE_BYTES;
    onPage?.(page);
    if (encoding === ENCODING_ZERO) ram.fill(0, pageAt, pageAt + PAGE_BYTES);
    else if (encoding === ENCODING_RAW) ram.set(records.subarray(dataAt, dataAt + PAGE_BYTES), pageAt);
    else {
      let word = pageAt >>> 2;
      let at = dataAt;
      const end = dataAt + length;
      while (at < end) {
        const zeros = view.getUint16(at, true);
        const literals = view.getUint16(at + 2, true);
        at += 4;
        word += zeros;
        for (let k = 0; k < literals; k++) {
          ram32[word++]! ^= view.getInt32(at, true);
          at += 4;
        }
      }
    }
    offset = dataAt + length;
    pages++;
  }
  return pages;
}
