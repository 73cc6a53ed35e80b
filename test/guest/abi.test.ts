// Proves that the C view of the machine (guests/include/hbft.h) and the TypeScript one
// (addressMap.ts, devices/packetNic.ts) agree on every address, register offset and constant.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as map from '@hbft/common/guest/addressMap.ts';
import * as net from '@hbft/common/guest/devices/packetNic.ts';

function readDefines(): Map<string, number> {
  const text = readFileSync(new URL('../../packages/common/guests/include/hbft.h', import.meta.url), 'utf8');
  const raw = new Map<string, string>();
  for (const match of text.matchAll(/^#define (HBFT_[A-Z0-9_]+) (.+?)(?:\s*\/\*.*)?$/gm)) raw.set(match[1]!, match[2]!.trim());
  const values = new Map<string, number>();
  const evaluate = (name: string): number => {
    if (values.has(name)) return values.get(name)!;
    const expression = raw
      .get(name)!
      .replace(/HBFT_U\(([^)]+)\)/g, '$1')
      .replace(/\b(HBFT_[A-Z0-9_]+)\b/g, (ref) => String(evaluate(ref)));
    assert.match(expression, /^[\d\sx+*()a-fA-F<-]+$/, `${name} is a constant expression`);
    const value = Function(`return (${expression});`)() as number;
    values.set(name, value);
    return value;
  };
  for (const name of raw.keys()) if (!/\(/.test(name) && !['HBFT_U', 'HBFT_REG', 'HBFT_H'].includes(name)) evaluate(name);
  return values;
}

test('hbft.h and the TypeScript address map agree', () => {
  const c = readDefines();
  const expect: Record<string, number> = {
    HBFT_FINISHER_BASE: map.FINISHER_BASE,
    HBFT_FINISHER_PASS: map.FINISHER_PASS,
    HBFT_FINISHER_FAIL: map.FINISHER_FAIL,
    HBFT_CLINT_BASE: map.CLINT_BASE,
    HBFT_CLINT_MSIP: map.CLINT_BASE + map.CLINT_MSIP,
    HBFT_CLINT_MTIMECMP_LO: map.CLINT_BASE + map.CLINT_MTIMECMP,
    HBFT_CLINT_MTIME_LO: map.CLINT_BASE + map.CLINT_MTIME,
    HBFT_UART_THR: map.UART_BASE + map.UART_THR,
    HBFT_UART_LSR: map.UART_BASE + map.UART_LSR,
    HBFT_SYSINFO_RAM_BASE: map.SYSINFO_BASE + map.SYSINFO_RAM_BASE,
    HBFT_SYSINFO_RAM_SIZE: map.SYSINFO_BASE + map.SYSINFO_RAM_SIZE,
    HBFT_SYSINFO_TIMEBASE_HZ: map.SYSINFO_BASE + map.SYSINFO_TIMEBASE_HZ,
    HBFT_SYSINFO_ARGS_LEN: map.SYSINFO_BASE + map.SYSINFO_ARGS_LEN,
    HBFT_SYSINFO_ARGS: map.SYSINFO_BASE + map.SYSINFO_ARGS,
    HBFT_RAM_BASE: map.RAM_BASE,
    HBFT_NET_BASE: map.NET_BASE,
    HBFT_NET_ID: map.NET_BASE + net.NET_ID,
    HBFT_NET_MAC_LO: map.NET_BASE + net.NET_MAC_LO,
    HBFT_NET_MAC_HI: map.NET_BASE + net.NET_MAC_HI,
    HBFT_NET_STATUS: map.NET_BASE + net.NET_STATUS,
    HBFT_NET_CTRL: map.NET_BASE + net.NET_CTRL,
    HBFT_NET_FRAME_MAX: map.NET_BASE + net.NET_FRAME_MAX,
    HBFT_NET_RX_BASE: map.NET_BASE + net.NET_RX_BASE,
    HBFT_NET_RX_COUNT: map.NET_BASE + net.NET_RX_COUNT,
    HBFT_NET_RX_AVAIL: map.NET_BASE + net.NET_RX_AVAIL,
    HBFT_NET_RX_USED: map.NET_BASE + net.NET_RX_USED,
    HBFT_NET_RX_CONSUMED: map.NET_BASE + net.NET_RX_CONSUMED,
    HBFT_NET_TX_BASE: map.NET_BASE + net.NET_TX_BASE,
    HBFT_NET_TX_COUNT: map.NET_BASE + net.NET_TX_COUNT,
    HBFT_NET_TX_AVAIL: map.NET_BASE + net.NET_TX_AVAIL,
    HBFT_NET_TX_USED: map.NET_BASE + net.NET_TX_USED,
    HBFT_NET_RX_DROPPED: map.NET_BASE + net.NET_RX_DROPPED,
    HBFT_NET_ID_VALUE: net.NET_ID_VALUE,
    HBFT_NET_CTRL_ENABLE: net.NET_CTRL_ENABLE,
    HBFT_NET_CTRL_CHECKSUM_OFFLOAD: net.NET_CTRL_CHECKSUM_OFFLOAD,
    HBFT_NET_STATUS_LINK_UP: net.NET_STATUS_LINK_UP,
    HBFT_NET_STATUS_RX_PENDING: net.NET_STATUS_RX_PENDING,
    HBFT_NET_STATUS_CONFIG_ERROR: net.NET_STATUS_CONFIG_ERROR,
    HBFT_NET_STATUS_TX_ERROR: net.NET_STATUS_TX_ERROR,
    HBFT_NET_STATUS_LINK_CHANGED: net.NET_STATUS_LINK_CHANGED,
    HBFT_NET_DESCRIPTOR_BYTES: net.NET_DESCRIPTOR_BYTES,
    HBFT_NET_RING_DESCRIPTORS_MAX: net.NET_RING_DESCRIPTORS_MAX,
    HBFT_NET_FRAME_BYTES_MAX: net.ETHERNET_FRAME_BYTES_MAX,
  };
  for (const [name, value] of Object.entries(expect)) {
    assert.ok(c.has(name), `hbft.h defines ${name}`);
    assert.equal(c.get(name)! >>> 0, value >>> 0, name);
  }
});
