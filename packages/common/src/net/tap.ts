import { randomBytes } from 'node:crypto';
import { closeSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { TapError } from '../errors.ts';
import { formatMac } from './mac.ts';
import { ETHERNET_FRAME_BYTES_MAX, ETHERNET_HEADER_BYTES } from '../guest/devices/packetNic.ts';

/*
 * A Linux TAP device: the guest NIC's attachment to a real L2 network. Node has no ioctl, so the
 * device is opened through koffi (an FFI with prebuilt binaries: nothing compiles at install):
 * open("/dev/net/tun", O_RDWR | O_NONBLOCK) and ioctl(TUNSETIFF) with IFF_TAP | IFF_NO_PI, after
 * which each read of the file descriptor returns one Ethernet frame and each write sends one
 * (linux/if_tun.h, Documentation/networking/tuntap.rst).
 *
 * The descriptor is non-blocking, so readFrames() and send() return at once and the event loop
 * never blocks: the caller drains frames between guest run slices. To sleep until a frame comes,
 * waitReadable() runs poll(2) with a bounded timeout on libuv's thread pool (koffi's async call),
 * so no thread is ever stuck in a read when the device closes. Reads call read(2) through koffi,
 * which returns -1 (EAGAIN) when nothing waits, instead of fs.readSync's thrown error (with its
 * stack) on every empty poll of the run loop.
 *
 * Writes: writing a frame into a TAP device runs the kernel's receive path for it (bridge,
 * netfilter, the local TCP stack) in the writing thread, about 17 µs per frame here, a quarter of
 * the unprotected guest's main thread under redis-benchmark. With `writerThread`, send() copies the
 * frame into a shared ring and a thread of its own writes it, in order, on the other core; a frame
 * that finds the ring full is dropped and counted, as the kernel's own full queue would drop it.
 *
 * Reads: with `readerThread`, a thread of its own waits in poll(2) and reads every frame into a
 * shared ring of the same layout as the writer's; readFrames() then only copies frames out of it
 * (no system call and no FFI call per frame on the main thread), and waitReadable() waits on the
 * ring with Atomics.waitAsync instead of a poll(2) on libuv's thread pool. A frame that finds the
 * ring full is dropped and counted (the guest's TCP peers retransmit it), as a NIC's full ring
 * drops. The descriptor is closed by whichever of the two threads ends last.
 */

const TUN_DEVICE = '/dev/net/tun';
const O_RDWR = 2;
const O_NONBLOCK = 0o4000;
const POLLIN = 1;
/** _IOW('T', 202, int) */
const TUNSETIFF = 0x4004_54ca;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
/** _IOR('T', 210, unsigned int): the device's name and flags. */
const TUNGETIFF = 0x8004_54d2;
/** A device made with `ip tuntap add` (it outlives its users); one TUNSETIFF creates is not. */
const IFF_PERSIST = 0x0800;
/** Sets the interface's hardware address; the TUN descriptor takes it too (drivers/net/tun.c). */
const SIOCSIFHWADDR = 0x8924;
const ARPHRD_ETHER = 1;
/** Where struct ifreq's sockaddr (family, then the address) starts: after the name. */
const IFREQ_SOCKADDR_OFFSET = 16;
/**
 * The first byte of a TAP's own MAC when this process creates the device (libvirt's rule): above
 * every vendor's and nearly every random locally administered MAC, so that a bridge whose MAC is
 * left to the kernel (its ports' lowest) never takes it from this port. Otherwise the bridge would
 * change its MAC when the process dies and its port goes, and hosts that cached the old one (the
 * guest's ARP cache holding the bridge's own address, for a client on the bridge) send into a void.
 */
const CREATED_TAP_MAC_FIRST_BYTE = 0xfe;
const IFNAMSIZ = 16;
/** struct ifreq: the name, then a union of at most 24 bytes (the flags are its first short). */
const IFREQ_BYTES = 40;
/** A read buffer larger than any frame, so a read never truncates one. */
const READ_BUFFER_BYTES = 65536;

const ERRNO_NAMES: Record<number, string> = { 1: 'EPERM', 2: 'ENOENT', 13: 'EACCES', 16: 'EBUSY', 19: 'ENODEV', 22: 'EINVAL' };
const EAGAIN = 11;
const EINTR = 4;

/** The writer thread's ring of frames: each a 32-bit length, then the frame, padded to 4 bytes. */
const WRITE_RING_BYTES = 4 * 1024 * 1024;
/** Int32 slots before the ring: where the next frame goes and comes from (bytes, wrapping at 2^32). */
const RING_HEAD = 0;
const RING_TAIL = 1;
const RING_WRITER_WAITING = 2;
const RING_CLOSED = 3;
const RING_FRAMES_WRITTEN = 4;
const RING_WRITE_ERRORS = 5;
const RING_HEADER_INT32S = 8;
/** Frames queued before the writer is woken even without a flush() (unless the caller says otherwise). */
const WRITER_FRAMES_PER_WAKE_MAX = 64;
/** A length that says "the ring wraps here". */
const RING_WRAP = 0xffffffff;

/** sched_setscheduler(2)'s policy for threads that wake often but should not take the core of the thread that woke them. */
const SCHED_BATCH = 3;

/**
 * Puts the calling thread under SCHED_BATCH (sched(7)) when workerData.batchPolicy says so: a
 * thread of that policy woken by the main thread does not preempt it (the kernel's wake-up
 * preemption skips batch threads), so a notify() returns at once and the woken thread runs on the
 * other core, or when the main thread next sleeps. Without it the writer, which has slept, took
 * the main thread's core at nearly every wake (the notify was 15-24 % of the main thread's
 * profile, its time off the core). Evaluated in the worker.
 */
const SET_BATCH_POLICY_SOURCE = `
if (batchPolicy) {
  try {
    const k = require(workerData.koffiPath);
    const param = Buffer.alloc(4);
    k.load('libc.so.6').func('int sched_setscheduler(int pid, int policy, void *param)')(0, ${SCHED_BATCH}, param);
  } catch {}
}
`;

/**
 * The writer thread: writes each frame of the ring to the TAP, in order; sleeps on the ring's head
 * when it is empty; closes the descriptor when told the device is closed (so no write ever meets a
 * closed or reused descriptor). Plain JavaScript, evaluated in the worker.
 */
const WRITER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { writeSync, closeSync } = require('node:fs');
const { fd, shared, threads, ringBytes, koffiPath, batchPolicy } = workerData;
${SET_BATCH_POLICY_SOURCE}
const header = new Int32Array(shared, 0, ${RING_HEADER_INT32S});
const ring = new Uint8Array(shared, ${RING_HEADER_INT32S * 4}, ringBytes);
const lengths = new DataView(shared, ${RING_HEADER_INT32S * 4}, ringBytes);
for (;;) {
  const head = Atomics.load(header, ${RING_HEAD});
  let tail = Atomics.load(header, ${RING_TAIL});
  if (head === tail) {
    if (Atomics.load(header, ${RING_CLOSED}) !== 0) break;
    Atomics.store(header, ${RING_WRITER_WAITING}, 1);
    if (Atomics.load(header, ${RING_HEAD}) === head && Atomics.load(header, ${RING_CLOSED}) === 0) Atomics.wait(header, ${RING_HEAD}, head, 1000);
    Atomics.store(header, ${RING_WRITER_WAITING}, 0);
    continue;
  }
  const at = (tail >>> 0) % ringBytes;
  const length = lengths.getUint32(at, true);
  if (length === ${RING_WRAP}) {
    Atomics.store(header, ${RING_TAIL}, (tail + (ringBytes - at)) | 0);
    continue;
  }
  try {
    writeSync(fd, ring, at + 4, length);
    Atomics.add(header, ${RING_FRAMES_WRITTEN}, 1);
  } catch {
    Atomics.add(header, ${RING_WRITE_ERRORS}, 1);
  }
  Atomics.store(header, ${RING_TAIL}, (tail + 4 + ((length + 3) & ~3)) | 0);
}
if (Atomics.sub(new Int32Array(threads), 0, 1) === 1) closeSync(fd);
`;

/** Where koffi's entry point is, for the threads that load it themselves. */
function koffiModulePath(): string {
  return createRequire(import.meta.url).resolve('koffi');
}

/** The main thread's side of the writer thread's ring. */
class TapWriter {
  private readonly header: Int32Array;
  private readonly ring: Uint8Array;
  private readonly lengths: DataView;
  private readonly worker: Worker;
  /** Frames dropped because the ring was full. */
  ringFull = 0;
  private unflushed = 0;

  private readonly framesPerWake: number;

  constructor(fd: number, threads: SharedArrayBuffer, framesPerWake: number, batchPolicy: boolean) {
    this.framesPerWake = framesPerWake;
    const shared = new SharedArrayBuffer(RING_HEADER_INT32S * 4 + WRITE_RING_BYTES);
    this.header = new Int32Array(shared, 0, RING_HEADER_INT32S);
    this.ring = new Uint8Array(shared, RING_HEADER_INT32S * 4, WRITE_RING_BYTES);
    this.lengths = new DataView(shared, RING_HEADER_INT32S * 4, WRITE_RING_BYTES);
    this.worker = new Worker(WRITER_SOURCE, {
      eval: true,
      workerData: { fd, shared, threads, ringBytes: WRITE_RING_BYTES, koffiPath: koffiModulePath(), batchPolicy },
    });
    this.worker.unref();
  }

  /** Queues a frame; false when the ring has no room for it (the frame is dropped). */
  send(frame: Uint8Array): boolean {
    const head = Atomics.load(this.header, RING_HEAD);
    const used = (head - Atomics.load(this.header, RING_TAIL)) >>> 0;
    const at = (head >>> 0) % WRITE_RING_BYTES;
    const needed = 4 + ((frame.length + 3) & ~3);
    const skip = at + needed > WRITE_RING_BYTES ? WRITE_RING_BYTES - at : 0;
    if (used + skip + needed > WRITE_RING_BYTES) {
      this.ringFull++;
      return false;
    }
    let next = head;
    if (skip > 0) {
      this.lengths.setUint32(at, RING_WRAP, true);
      next = (next + skip) | 0;
    }
    const start = (next >>> 0) % WRITE_RING_BYTES;
    this.lengths.setUint32(start, frame.length, true);
    this.ring.set(frame, start + 4);
    Atomics.store(this.header, RING_HEAD, (next + needed) | 0);
    this.unflushed++;
    if (this.unflushed >= this.framesPerWake) this.flush();
    return true;
  }

  /** Wakes the writer for the frames queued since the last flush (one futex call for all of them). */
  flush(): void {
    if (this.unflushed === 0) return;
    this.unflushed = 0;
    if (Atomics.load(this.header, RING_WRITER_WAITING) !== 0) Atomics.notify(this.header, RING_HEAD);
  }

  get framesWritten(): number {
    return Atomics.load(this.header, RING_FRAMES_WRITTEN);
  }

  get writeErrors(): number {
    return Atomics.load(this.header, RING_WRITE_ERRORS) + this.ringFull;
  }

  /** Frames still queued are written, then the thread ends (closing the descriptor if it is the last). */
  close(): void {
    this.flush();
    Atomics.store(this.header, RING_CLOSED, 1);
    Atomics.notify(this.header, RING_HEAD);
  }
}

/** The reader thread's ring header: the slots of the writer's, and these. */
const RING_READER_WAITING = 6;
const RING_BAD_FRAMES = 7;
/** The threads that still use the descriptor (the last to end closes it). */
const THREADS_HEADER_INT32S = 1;
const READ_RING_BYTES = 2 * 1024 * 1024;
/** The reader's poll(2) timeout: how soon it notices that the device closed. */
const READER_POLL_MS = 50;

/**
 * The reader thread: poll(2) until the TAP is readable, then read(2) every frame into the ring
 * (a frame that does not fit is counted and dropped), and wake the main thread if it waits.
 * Plain JavaScript, evaluated in the worker; it loads koffi itself.
 */
const READER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { closeSync } = require('node:fs');
const { fd, shared, threads, ringBytes, koffiPath, frameMin, frameMax, batchPolicy } = workerData;
${SET_BATCH_POLICY_SOURCE}
const koffi = require(koffiPath);
const libc = koffi.load('libc.so.6');
const read = libc.func('long read(int fd, void *buffer, unsigned long count)');
const poll = libc.func('int poll(void *fds, unsigned long count, int timeout)');
const header = new Int32Array(shared, 0, ${RING_HEADER_INT32S});
const ring = new Uint8Array(shared, ${RING_HEADER_INT32S * 4}, ringBytes);
const lengths = new DataView(shared, ${RING_HEADER_INT32S * 4}, ringBytes);
const live = new Int32Array(threads);
const buffer = Buffer.alloc(${READ_BUFFER_BYTES});
const pollfd = Buffer.alloc(8);
pollfd.writeInt32LE(fd, 0);
pollfd.writeInt16LE(${POLLIN}, 4);
while (Atomics.load(header, ${RING_CLOSED}) === 0) {
  if (poll(pollfd, 1, ${READER_POLL_MS}) <= 0) continue;
  let added = 0;
  for (;;) {
    const bytes = Number(read(fd, buffer, buffer.length));
    if (bytes < 0) break;
    if (bytes < frameMin || bytes > frameMax) {
      Atomics.add(header, ${RING_BAD_FRAMES}, 1);
      continue;
    }
    const head = Atomics.load(header, ${RING_HEAD});
    const used = (head - Atomics.load(header, ${RING_TAIL})) >>> 0;
    const at = (head >>> 0) % ringBytes;
    const needed = 4 + ((bytes + 3) & ~3);
    const skip = at + needed > ringBytes ? ringBytes - at : 0;
    if (used + skip + needed > ringBytes) {
      Atomics.add(header, ${RING_WRITE_ERRORS}, 1);
      continue;
    }
    let next = head;
    if (skip > 0) {
      lengths.setUint32(at, ${RING_WRAP}, true);
      next = (next + skip) | 0;
    }
    const start = (next >>> 0) % ringBytes;
    lengths.setUint32(start, bytes, true);
    ring.set(buffer.subarray(0, bytes), start + 4);
    Atomics.store(header, ${RING_HEAD}, (next + needed) | 0);
    Atomics.add(header, ${RING_FRAMES_WRITTEN}, 1);
    added++;
  }
  if (added > 0 && Atomics.load(header, ${RING_READER_WAITING}) !== 0) Atomics.notify(header, ${RING_HEAD});
}
if (Atomics.sub(live, 0, 1) === 1) closeSync(fd);
`;

/** The main thread's side of the reader thread's ring. */
class TapReader {
  private readonly header: Int32Array;
  private readonly ring: Uint8Array;
  private readonly lengths: DataView;
  private readonly worker: Worker;

  constructor(fd: number, threads: SharedArrayBuffer, batchPolicy: boolean) {
    const shared = new SharedArrayBuffer(RING_HEADER_INT32S * 4 + READ_RING_BYTES);
    this.header = new Int32Array(shared, 0, RING_HEADER_INT32S);
    this.ring = new Uint8Array(shared, RING_HEADER_INT32S * 4, READ_RING_BYTES);
    this.lengths = new DataView(shared, RING_HEADER_INT32S * 4, READ_RING_BYTES);
    const koffiPath = koffiModulePath();
    this.worker = new Worker(READER_SOURCE, {
      eval: true,
      workerData: {
        fd,
        shared,
        threads,
        ringBytes: READ_RING_BYTES,
        koffiPath,
        frameMin: ETHERNET_HEADER_BYTES,
        frameMax: ETHERNET_FRAME_BYTES_MAX,
        batchPolicy,
      },
    });
    this.worker.unref();
  }

  /** Hands out the frames in the ring (each a copy), at most framesMax; returns how many. */
  readFrames(framesMax: number, onFrame: (frame: Uint8Array) => void): number {
    let frames = 0;
    let tail = Atomics.load(this.header, RING_TAIL);
    const head = Atomics.load(this.header, RING_HEAD);
    while (tail !== head && frames < framesMax) {
      const at = (tail >>> 0) % READ_RING_BYTES;
      const length = this.lengths.getUint32(at, true);
      if (length === RING_WRAP) {
        tail = (tail + (READ_RING_BYTES - at)) | 0;
        continue;
      }
      const frame = this.ring.slice(at + 4, at + 4 + length);
      tail = (tail + 4 + ((length + 3) & ~3)) | 0;
      Atomics.store(this.header, RING_TAIL, tail);
      frames++;
      onFrame(frame);
    }
    Atomics.store(this.header, RING_TAIL, tail);
    return frames;
  }

  get pending(): boolean {
    return Atomics.load(this.header, RING_HEAD) !== Atomics.load(this.header, RING_TAIL);
  }

  /** Resolves when the ring has a frame, or after timeoutMs. */
  async waitReadable(timeoutMs: number): Promise<void> {
    const head = Atomics.load(this.header, RING_HEAD);
    Atomics.store(this.header, RING_READER_WAITING, 1);
    try {
      if (head !== Atomics.load(this.header, RING_TAIL)) return;
      const waited = Atomics.waitAsync(this.header, RING_HEAD, head, timeoutMs);
      if (!waited.async) return;
      // A pending waitAsync does not keep the event loop alive (nor do the unref'd threads): a
      // timer for the same timeout does, so an idle guest's process waits instead of exiting.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([waited.value, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
      clearTimeout(timer);
    } finally {
      Atomics.store(this.header, RING_READER_WAITING, 0);
    }
  }

  get framesRead(): number {
    return Atomics.load(this.header, RING_FRAMES_WRITTEN);
  }

  get badFrames(): number {
    return Atomics.load(this.header, RING_BAD_FRAMES);
  }

  get dropped(): number {
    return Atomics.load(this.header, RING_WRITE_ERRORS);
  }

  close(): void {
    Atomics.store(this.header, RING_CLOSED, 1);
  }
}

export interface TapOpenOptions {
  /** Write frames from a thread of its own (see the comment at the top); send() then never blocks on the kernel. */
  writerThread?: boolean;
  /** Frames queued before send() wakes the writer itself, without waiting for flush() (default 64). */
  writerFramesPerWake?: number;
  /** Read frames from a thread of its own (see the comment at the top); readFrames() then makes no system call. */
  readerThread?: boolean;
  /** Runs the reader and writer threads under SCHED_BATCH (see SET_BATCH_POLICY_SOURCE); default false. */
  threadsBatchPolicy?: boolean;
}

interface Libc {
  open: (path: string, flags: number) => number;
  /** read(2): bytes read, or -1 with errno (EAGAIN when nothing waits on a non-blocking fd). */
  read: (fd: number, buffer: Buffer, bytes: number) => number;
  ioctl: (fd: number, request: number, argument: Buffer) => number;
  /** poll(2) on the thread pool: resolves with poll's result. */
  pollAsync: (pollfd: Buffer, timeoutMs: number) => Promise<number>;
  errno: () => number;
}

let libc: Libc | null = null;

/** Loads koffi and libc on first use, so that nothing else pays for the FFI. */
async function loadLibc(): Promise<Libc> {
  if (libc !== null) return libc;
  let koffi: typeof import('koffi');
  try {
    koffi = (await import('koffi')).default as unknown as typeof import('koffi');
  } catch (error) {
    throw new TapError(`cannot load koffi, the FFI a TAP device needs: ${(error as Error).message}`);
  }
  const library = koffi.load('libc.so.6');
  const open = library.func('int open(const char *path, int flags)');
  const ioctl = library.func('int ioctl(int fd, unsigned long request, void *argument)');
  const read = library.func('long read(int fd, void *buffer, unsigned long count)');
  const poll = library.func('int poll(void *fds, unsigned long count, int timeout)');
  libc = {
    open: (path, flags) => open(path, flags) as number,
    read: (fd, buffer, bytes) => Number(read(fd, buffer, bytes)),
    ioctl: (fd, request, argument) => ioctl(fd, request, argument) as number,
    pollAsync: (pollfd, timeoutMs) =>
      new Promise((resolve, reject) =>
        poll.async(pollfd, 1, timeoutMs, (error: unknown, result: number) => (error ? reject(error as Error) : resolve(result))),
      ),
    errno: () => koffi.errno(),
  };
  return libc;
}

function describeErrno(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

export interface TapCounters {
  framesRead: number;
  framesWritten: number;
  /** Reads that were not an Ethernet frame (shorter than its header, or longer than the NIC takes). */
  readBadFrames: number;
  /** Frames the reader thread found no room for in its ring (dropped). */
  readDropped: number;
  /** Writes the kernel refused (its queue full, or the interface down): the frame is lost. */
  writeErrors: number;
}

export class TapDevice {
  readonly name: string;
  private readonly fd: number;
  private readonly libc: Libc;
  private closed = false;
  private readonly buffer = Buffer.alloc(READ_BUFFER_BYTES);
  private readonly pollfd = Buffer.alloc(8);
  private readonly writer: TapWriter | null;
  private readonly reader: TapReader | null;
  private readonly ownCounters: TapCounters = { framesRead: 0, framesWritten: 0, readBadFrames: 0, readDropped: 0, writeErrors: 0 };

  /** Whether opening created the device (it goes away when this process closes it, or dies). */
  readonly created: boolean;
  /** The MAC this process gave the device it created (the device's own, not the guest's), or why it could not. */
  readonly createdMac: { mac?: string; error?: string };

  private constructor(
    name: string,
    fd: number,
    c: Libc,
    options: TapOpenOptions,
    created: boolean,
    createdMac: { mac?: string; error?: string },
  ) {
    this.name = name;
    this.created = created;
    this.createdMac = createdMac;
    this.fd = fd;
    this.libc = c;
    // How many threads use the descriptor: the last of them to end closes it.
    const threads = new SharedArrayBuffer(THREADS_HEADER_INT32S * 4);
    new Int32Array(threads)[0] = (options.writerThread === true ? 1 : 0) + (options.readerThread === true ? 1 : 0);
    const batchPolicy = options.threadsBatchPolicy === true;
    this.writer =
      options.writerThread === true
        ? new TapWriter(fd, threads, options.writerFramesPerWake ?? WRITER_FRAMES_PER_WAKE_MAX, batchPolicy)
        : null;
    this.reader = options.readerThread === true ? new TapReader(fd, threads, batchPolicy) : null;
    this.pollfd.writeInt32LE(fd, 0);
    this.pollfd.writeInt16LE(POLLIN, 4);
  }

  /** Creates (or attaches to) the TAP interface `name`; throws TapError naming what is missing. */
  static async open(name: string, options: TapOpenOptions = {}): Promise<TapDevice> {
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name)) {
      throw new TapError(`TAP name "${name}" is not an interface name (1-15 letters, digits, '_', '.', '-')`);
    }
    const c = await loadLibc();
    const fd = c.open(TUN_DEVICE, O_RDWR | O_NONBLOCK);
    if (fd < 0) {
      const errno = c.errno();
      const hint =
        errno === 2
          ? ' (no TUN/TAP support: load the tun module)'
          : errno === 13 || errno === 1
            ? ' (needs root or CAP_NET_ADMIN, or a /dev/net/tun others may open)'
            : '';
      throw new TapError(`cannot open ${TUN_DEVICE}: ${describeErrno(errno)}${hint}`);
    }
    const request = Buffer.alloc(IFREQ_BYTES);
    request.write(name, 0, IFNAMSIZ - 1, 'ascii');
    request.writeUInt16LE(IFF_TAP | IFF_NO_PI, IFNAMSIZ);
    if (c.ioctl(fd, TUNSETIFF, request) < 0) {
      const errno = c.errno();
      closeSync(fd);
      const hint =
        errno === 1 ? ' (needs CAP_NET_ADMIN in this network namespace)' : errno === 16 ? ' (in use by another process, or not a TAP)' : '';
      throw new TapError(`cannot create TAP device ${name}: ioctl(TUNSETIFF) failed with ${describeErrno(errno)}${hint}`);
    }
    const created = TapDevice.createdHere(fd, c);
    const mac = created ? TapDevice.setCreatedMac(fd, c, name) : {};
    return new TapDevice(name, fd, c, options, created, mac);
  }

  /** Whether TUNSETIFF created the device (not persistent: nobody else made it beforehand). */
  private static createdHere(fd: number, c: Libc): boolean {
    const request = Buffer.alloc(IFREQ_BYTES);
    if (c.ioctl(fd, TUNGETIFF, request) < 0) return false;
    return (request.readUInt16LE(IFNAMSIZ) & IFF_PERSIST) === 0;
  }

  /**
   * Gives a device this process created a MAC no bridge takes as its own (see
   * CREATED_TAP_MAC_FIRST_BYTE): the MAC, or why the kernel refused (the device works without it).
   */
  private static setCreatedMac(fd: number, c: Libc, name: string): { mac?: string; error?: string } {
    const mac = randomBytes(6);
    mac[0] = CREATED_TAP_MAC_FIRST_BYTE;
    const request = Buffer.alloc(IFREQ_BYTES);
    request.write(name, 0, IFNAMSIZ - 1, 'ascii');
    request.writeUInt16LE(ARPHRD_ETHER, IFREQ_SOCKADDR_OFFSET);
    mac.copy(request, IFREQ_SOCKADDR_OFFSET + 2);
    if (c.ioctl(fd, SIOCSIFHWADDR, request) < 0) return { error: `ioctl(SIOCSIFHWADDR) failed with ${describeErrno(c.errno())}` };
    return { mac: formatMac(mac) };
  }

  get counters(): TapCounters {
    const counters = { ...this.ownCounters };
    if (this.writer !== null) {
      counters.framesWritten = this.writer.framesWritten;
      counters.writeErrors = this.writer.writeErrors;
    }
    if (this.reader !== null) {
      counters.framesRead = this.reader.framesRead;
      counters.readBadFrames = this.reader.badFrames;
      counters.readDropped = this.reader.dropped;
    }
    return counters;
  }

  /** Reads the frames waiting now (at most framesMax) and hands each to onFrame; never blocks. */
  readFrames(framesMax: number, onFrame: (frame: Uint8Array) => void): number {
    if (this.reader !== null) return this.closed ? 0 : this.reader.readFrames(framesMax, onFrame);
    let frames = 0;
    while (!this.closed && frames < framesMax) {
      const bytes = this.libc.read(this.fd, this.buffer, READ_BUFFER_BYTES);
      if (bytes < 0) {
        const errno = this.libc.errno();
        if (errno === EAGAIN) break;
        if (errno === EINTR) continue;
        throw new TapError(`reading TAP device ${this.name} failed: ${describeErrno(errno)}`);
      }
      frames++;
      if (bytes < ETHERNET_HEADER_BYTES || bytes > ETHERNET_FRAME_BYTES_MAX) {
        this.ownCounters.readBadFrames++;
        continue;
      }
      this.ownCounters.framesRead++;
      onFrame(Uint8Array.from(this.buffer.subarray(0, bytes)));
    }
    return frames;
  }

  /** Sends one frame; false when the kernel refused it (counted) or the device is closed. */
  send(frame: Uint8Array): boolean {
    if (this.closed) return false;
    if (this.writer !== null) return this.writer.send(frame);
    try {
      writeSync(this.fd, frame, 0, frame.length);
      this.ownCounters.framesWritten++;
      return true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN' && code !== 'EIO' && code !== 'ENOBUFS')
        throw new TapError(`writing TAP device ${this.name} failed: ${(error as Error).message}`);
      this.ownCounters.writeErrors++;
      return false;
    }
  }

  /** With a writer thread: wakes it for the frames send() queued (the caller's batch ends). */
  flush(): void {
    this.writer?.flush();
  }

  /** Resolves when a frame can be read, or after timeoutMs (on the thread pool: no loop blocking). */
  async waitReadable(timeoutMs: number): Promise<void> {
    if (this.closed) return;
    if (this.reader !== null) return this.reader.waitReadable(Math.max(0, Math.min(timeoutMs, 1000)));
    await this.libc.pollAsync(this.pollfd, Math.max(0, Math.min(timeoutMs, 1000)));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.writer?.close();
    this.reader?.close();
    if (this.writer === null && this.reader === null) closeSync(this.fd);
  }
}
