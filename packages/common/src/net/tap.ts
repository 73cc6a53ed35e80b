import { closeSync, readSync, writeSync } from 'node:fs';
import { TapError } from '../errors.ts';
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
 * so no thread is ever stuck in a read when the device closes.
 */

const TUN_DEVICE = '/dev/net/tun';
const O_RDWR = 2;
const O_NONBLOCK = 0o4000;
const POLLIN = 1;
/** _IOW('T', 202, int) */
const TUNSETIFF = 0x4004_54ca;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const IFNAMSIZ = 16;
/** struct ifreq: the name, then a union of at most 24 bytes (the flags are its first short). */
const IFREQ_BYTES = 40;
/** A read buffer larger than any frame, so a read never truncates one. */
const READ_BUFFER_BYTES = 65536;

const ERRNO_NAMES: Record<number, string> = { 1: 'EPERM', 2: 'ENOENT', 13: 'EACCES', 16: 'EBUSY', 19: 'ENODEV', 22: 'EINVAL' };

interface Libc {
  open: (path: string, flags: number) => number;
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
  const poll = library.func('int poll(void *fds, unsigned long count, int timeout)');
  libc = {
    open: (path, flags) => open(path, flags) as number,
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
  readonly counters: TapCounters = { framesRead: 0, framesWritten: 0, readBadFrames: 0, writeErrors: 0 };

  private constructor(name: string, fd: number, c: Libc) {
    this.name = name;
    this.fd = fd;
    this.libc = c;
    this.pollfd.writeInt32LE(fd, 0);
    this.pollfd.writeInt16LE(POLLIN, 4);
  }

  /** Creates (or attaches to) the TAP interface `name`; throws TapError naming what is missing. */
  static async open(name: string): Promise<TapDevice> {
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
    return new TapDevice(name, fd, c);
  }

  /** Reads the frames waiting now (at most framesMax) and hands each to onFrame; never blocks. */
  readFrames(framesMax: number, onFrame: (frame: Uint8Array) => void): number {
    let frames = 0;
    while (!this.closed && frames < framesMax) {
      let bytes: number;
      try {
        bytes = readSync(this.fd, this.buffer, 0, READ_BUFFER_BYTES, null);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') break;
        throw new TapError(`reading TAP device ${this.name} failed: ${(error as Error).message}`);
      }
      frames++;
      if (bytes < ETHERNET_HEADER_BYTES || bytes > ETHERNET_FRAME_BYTES_MAX) {
        this.counters.readBadFrames++;
        continue;
      }
      this.counters.framesRead++;
      onFrame(Uint8Array.from(this.buffer.subarray(0, bytes)));
    }
    return frames;
  }

  /** Sends one frame; false when the kernel refused it (counted) or the device is closed. */
  send(frame: Uint8Array): boolean {
    if (this.closed) return false;
    try {
      writeSync(this.fd, frame, 0, frame.length);
      this.counters.framesWritten++;
      return true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN' && code !== 'EIO' && code !== 'ENOBUFS')
        throw new TapError(`writing TAP device ${this.name} failed: ${(error as Error).message}`);
      this.counters.writeErrors++;
      return false;
    }
  }

  /** Resolves when a frame can be read, or after timeoutMs (on the thread pool: no loop blocking). */
  async waitReadable(timeoutMs: number): Promise<void> {
    if (this.closed) return;
    await this.libc.pollAsync(this.pollfd, Math.max(0, Math.min(timeoutMs, 1000)));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}
