import { SettingError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { gratuitousArpFrame, parseIpv4 } from './arp.ts';
import { TapDevice, type TapCounters } from './tap.ts';
import { guestMac } from './tapRunner.ts';

/** Frames read from the TAP in one turn of the event loop, at most. */
const TAP_FRAMES_PER_TURN_MAX = 256;
/** Longest poll for a frame on the thread pool: how long a close may wait for the reader. */
const TAP_WAIT_MS = 100;
/** Frames for the guest a standby keeps for the guest it may resume, at most, and how old. */
const STANDBY_KEPT_FRAMES_MAX = 256;
const STANDBY_KEPT_MS_MAX = 2_000;

/** Where a node attaches the guest's packet NIC: a TAP device, the guest's address and MAC. */
export interface GuestNetworkConfig {
  tapName: string;
  /** "A.B.C.D/N", as the guest gets it in its `ip=` argument. */
  address: string;
  ipv4: number;
  mac: Uint8Array;
}

/** "A.B.C.D/N": the guest's IPv4 address and prefix length, or a SettingError naming `setting`. */
export function parseGuestAddress(text: string, setting = 'guest-ip'): { address: string; ipv4: number } {
  const prefix = /\/(\d{1,2})$/.exec(text);
  const ipv4 = parseIpv4(text);
  if (ipv4 === undefined || !prefix || Number(prefix[1]) < 1 || Number(prefix[1]) > 32) {
    throw new SettingError(setting, `expected the guest's IPv4 address and prefix length, like 10.0.0.2/24, got "${text}"`);
  }
  return { address: text, ipv4 };
}

/**
 * The guest's network from `--tap` and `--guest-ip` (both or neither). `identity` names the guest
 * (its image): with the address it gives the MAC, the same on every node that runs this guest.
 */
export function guestNetworkFrom(tap: string | undefined, guestIp: string | undefined, identity: string): GuestNetworkConfig | undefined {
  if (tap === undefined && guestIp === undefined) return undefined;
  if (tap === undefined) throw new SettingError('guest-ip', 'needs --tap: without a TAP device the guest has no network');
  if (guestIp === undefined) throw new SettingError('tap', "needs --guest-ip: the guest's address on that network, like 10.0.0.2/24");
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(tap)) {
    throw new SettingError('tap', `"${tap}" is not an interface name (1-15 letters, digits, '_', '.', '-')`);
  }
  const { address, ipv4 } = parseGuestAddress(guestIp);
  return { tapName: tap, address, ipv4, mac: guestMac(`${identity}@${address}`) };
}

/** The guest's argument string with its address added (`ip=A.B.C.D/N`). */
export function guestArgsWithAddress(args: string, network: GuestNetworkConfig | undefined): string {
  return [args, network === undefined ? '' : `ip=${network.address}`].filter((part) => part !== '').join(' ');
}

export interface GuestTapCounters extends TapCounters {
  /** Frames read while no guest was attached (a backup's standby): discarded. */
  framesDiscarded: number;
  /** Frames for the guest that a standby kept and handed to the guest when it took over. */
  framesReplayed: number;
}

/**
 * A node's TAP device for the guest, driven on the main thread without blocking it: a reader that
 * drains the device between turns of the event loop (waiting on the thread pool when it is empty)
 * and hands each frame to the attached guest, or discards it while none is attached, so that a
 * standby's kernel queue never fills with stale frames. Transmitting is the caller's: a backup
 * sends nothing until it takes over, and a primary only what output commit releases.
 *
 * A standby keeps the last few frames addressed to the guest's MAC (bounded in number and age)
 * and hands them to the guest when one is attached. Once the primary's TAP is gone its bridge port
 * is down and the bridge floods the guest's frames to every port: the client retransmissions that
 * arrive while the backup is still deciding that the primary is dead then reach the resumed guest
 * at once, instead of waiting for the client's next, backed-off, retransmission. Input is safe to
 * give twice: the resumed guest is at its last checkpoint, and its TCP drops what it already has.
 */
export class GuestTap {
  readonly config: GuestNetworkConfig;
  private readonly tap: TapDevice;
  private readonly logger: Logger;
  private deliver: ((frame: Uint8Array) => void) | null = null;
  private closed = false;
  private framesDiscarded = 0;
  private framesReplayed = 0;
  private kept: { frame: Uint8Array; atMs: number }[] = [];
  /** Whether a standby keeps frames for the guest (not after detach()). */
  private keeping = true;
  private readonly reading: Promise<void>;

  private constructor(config: GuestNetworkConfig, tap: TapDevice, logger: Logger) {
    this.config = config;
    this.tap = tap;
    this.logger = logger;
    this.reading = this.readLoop();
  }

  /** Opens (attaches to, or creates) the TAP device; throws TapError naming what is missing. */
  static async open(config: GuestNetworkConfig, logger: Logger): Promise<GuestTap> {
    // Frames are read and written on threads of their own, as `hbft run` does (tap.ts): writing a
    // frame runs the kernel's receive path for it in the writing thread (17 µs a frame measured).
    const tap = await TapDevice.open(config.tapName, { writerThread: true, readerThread: true });
    if (!tap.created) logger.info({ tap: config.tapName, guest: config.address }, 'attached to the TAP device');
    else if (tap.createdMac.error === undefined) {
      logger.info(
        { tap: config.tapName, guest: config.address, tapMac: tap.createdMac.mac },
        'created the TAP device (it goes when this process does; its MAC is one no bridge takes as its own)',
      );
    } else {
      logger.warn(
        { tap: config.tapName, guest: config.address, err: tap.createdMac.error },
        'created the TAP device, but could not give it a high MAC: a bridge may take its MAC and change it when this process dies',
      );
    }
    return new GuestTap(config, tap, logger);
  }

  /**
   * From now on frames from the network go to `deliver`, after the frames for the guest kept
   * while none was attached.
   */
  attach(deliver: (frame: Uint8Array) => void): void {
    this.deliver = deliver;
    const oldestMs = performance.now() - STANDBY_KEPT_MS_MAX;
    for (const { frame, atMs } of this.kept) {
      if (atMs < oldestMs) continue;
      this.framesReplayed++;
      deliver(frame);
    }
    this.kept = [];
  }

  /** Stops delivering frames and keeping any: this node may not act on the network any more. */
  detach(): void {
    this.deliver = null;
    this.kept = [];
    this.keeping = false;
  }

  /** Sends one frame to the network; false when the kernel refused it (counted) or the TAP is closed. */
  send(frame: Uint8Array): boolean {
    const sent = this.tap.send(frame);
    this.flushSoon();
    return sent;
  }

  /** Gratuitous ARP for the guest (its address now lives behind this node's TAP). */
  announce(mac: Uint8Array = this.config.mac): boolean {
    const sent = this.tap.send(gratuitousArpFrame(mac, this.config.ipv4));
    this.flushSoon();
    return sent;
  }

  private flushPending = false;

  /** Wakes the writer thread once for the frames sent in this turn (an epoch's release is many). */
  private flushSoon(): void {
    if (this.flushPending) return;
    this.flushPending = true;
    queueMicrotask(() => {
      this.flushPending = false;
      this.tap.flush();
    });
  }

  counters(): GuestTapCounters {
    return { ...this.tap.counters, framesDiscarded: this.framesDiscarded, framesReplayed: this.framesReplayed };
  }

  private readonly onFrame = (frame: Uint8Array): void => {
    if (this.deliver !== null) {
      this.deliver(frame);
      return;
    }
    this.framesDiscarded++;
    if (!this.keeping || !this.addressedToGuest(frame)) return;
    if (this.kept.length >= STANDBY_KEPT_FRAMES_MAX) this.kept.shift();
    this.kept.push({ frame, atMs: performance.now() });
  };

  private addressedToGuest(frame: Uint8Array): boolean {
    const mac = this.config.mac;
    for (let i = 0; i < mac.length; i++) if (frame[i] !== mac[i]) return false;
    return true;
  }

  private async readLoop(): Promise<void> {
    try {
      while (!this.closed) {
        if (this.tap.readFrames(TAP_FRAMES_PER_TURN_MAX, this.onFrame) === 0) await this.tap.waitReadable(TAP_WAIT_MS);
        else await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (error) {
      if (!this.closed) this.logger.error({ err: (error as Error).message, tap: this.config.tapName }, 'reading the TAP device failed');
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.detach();
    await this.reading;
    this.tap.close();
  }
}
