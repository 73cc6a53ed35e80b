// Proves the virtual NIC's flow control on the real kv guest: queued input is refused beyond its
// bounds (so a machine state with the queue full still fits a checkpoint's BEGIN frame), small
// chunks coalesce instead of growing the queue, a connection whose output is not taken gets no
// more input while the others are served, output for a hung-up connection is dropped, and the
// ring is filled at most 4 KiB ahead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Machine } from '@hbft/common/guest/machine.ts';
import { resolveGuestImage } from '@hbft/common/guest/images.ts';
import { NIC_FLOW_LIMITS, type NicFlowLimits } from '@hbft/common/guest/devices/nic.ts';
import {
  clientInputQueuedBytesMaxPerConnection,
  machineStateBytesMax,
  clientInputQueuedBytesMaxTotal,
  nicReceiveRingFillBytesMax,
} from '@hbft/common/limits.ts';
import { encodeCommand } from '@hbft/common/session/resp.ts';

function kvMachine(limits: NicFlowLimits = NIC_FLOW_LIMITS): { machine: Machine; output: Map<number, number>; settle: () => void } {
  const machine = new Machine({ memoryBytes: 32 * 1024 * 1024 });
  machine.loadElf(readFileSync(resolveGuestImage('kv')));
  machine.nic.flowLimits = limits;
  const output = new Map<number, number>();
  machine.nic.host = { onTransmit: (slot, bytes) => output.set(slot, (output.get(slot) ?? 0) + bytes.length), onGuestClose: () => {} };
  const settle = () => {
    for (let i = 0; i < 2000; i++) if (machine.run(200_000).stop === 2) return;
    assert.fail('the guest never went idle');
  };
  settle();
  return { machine, output, settle };
}

test('queued input is refused beyond the per-connection and total bounds, and a full queue fits in a checkpoint', () => {
  const { machine } = kvMachine();
  const nic = machine.nic;
  const slots = Array.from({ length: 64 }, (_, i) => nic.openConnection(`s:${'0'.repeat(30)}${String(i).padStart(2, '0')}`));
  nic.write(0x20, 4, 0); // NIC_CTRL: disabled, so that everything stays queued
  const chunk = new Uint8Array(1000).fill(0x41);
  let queued = 0;
  for (const slot of slots) {
    for (;;) {
      const result = nic.deliver(slot, chunk);
      if (result !== 'queued') {
        assert.equal(result, 'over-limit');
        break;
      }
      queued += chunk.length;
    }
    assert.ok(nic.pendingBytesOf(slot) <= clientInputQueuedBytesMaxPerConnection);
  }
  assert.ok(
    queued <= clientInputQueuedBytesMaxTotal && queued > clientInputQueuedBytesMaxTotal - chunk.length,
    `queued ${queued} bytes in all`,
  );
  const state = machine.getState();
  assert.ok(state.length <= machineStateBytesMax, `a machine state with a full input queue is ${state.length} bytes`);
});

test('many small chunks coalesce into one queued event per connection', () => {
  const { machine } = kvMachine();
  const nic = machine.nic;
  const slot = nic.openConnection('p:1:1');
  nic.write(0x20, 4, 0);
  for (let i = 0; i < 10_000; i++) assert.equal(nic.deliver(slot, Uint8Array.of(0x20)), 'queued');
  assert.equal(nic.pendingEvents, 2, 'OPEN and one DATA event');
  assert.equal(nic.pendingBytes, 10_000);
});

test('a connection whose output is not taken gets no more input; the others are served; taking output resumes it', () => {
  const limits = { ...NIC_FLOW_LIMITS, outputOutstandingBytesHighPerConnection: 64 * 1024 };
  const { machine, output, settle } = kvMachine(limits);
  const nic = machine.nic;
  const hog = nic.openConnection('p:1:1');
  const polite = nic.openConnection('p:1:2');
  nic.deliver(hog, encodeCommand(['SET', 'big', 'x'.repeat(10_000)]));
  settle();
  nic.outputTaken(hog, output.get(hog)!);
  const gets = 2_000;
  nic.deliver(hog, new TextEncoder().encode('GET big\r\n'.repeat(gets)));
  settle();
  const produced = output.get(hog)!;
  // The hold engages at 64 KiB; requests already in the ring (at most 4 KiB of them) still run.
  const requestsInRingMax = Math.ceil(nicReceiveRingFillBytesMax / 'GET big\r\n'.length);
  assert.ok(produced < limits.outputOutstandingBytesHighPerConnection + requestsInRingMax * 10_020, `output ${produced} bytes is bounded`);
  assert.ok(nic.inputHeld(hog) && nic.pendingBytesOf(hog) > 0, 'the rest of the input waits in the queue');
  nic.deliver(polite, encodeCommand(['PING']));
  settle();
  assert.equal(output.get(polite), '+PONG\r\n'.length, 'another connection is served meanwhile');
  for (let i = 0; i < 1000 && nic.pendingBytesOf(hog) > 0; i++) {
    nic.outputTaken(hog, output.get(hog)!);
    settle();
  }
  assert.equal(nic.pendingBytesOf(hog), 0, 'taking the output lets all the input through');
  assert.ok(output.get(hog)! >= gets * 10_000, 'every GET was answered');
});

test('output for a hung-up connection is dropped at the device and does not hold other connections back', () => {
  const limits = { ...NIC_FLOW_LIMITS, outputOutstandingBytesHighTotal: 128 * 1024 };
  const { machine, output, settle } = kvMachine(limits);
  const nic = machine.nic;
  const gone = nic.openConnection('p:1:1');
  nic.deliver(gone, encodeCommand(['SET', 'big', 'x'.repeat(10_000)]));
  nic.deliver(gone, new TextEncoder().encode('GET big\r\n'.repeat(100)));
  nic.hangUp(gone);
  settle();
  assert.ok((output.get(gone) ?? 0) < 10_000, 'no GET reply reached the host');
  assert.equal(nic.outstandingOutputBytes, 0);
});

test('the device fills at most 4 KiB of a large receive ring', () => {
  const { machine } = kvMachine();
  const nic = machine.nic;
  const slot = nic.openConnection('p:1:1');
  nic.deliver(slot, new TextEncoder().encode('PING\r\n'.repeat(10_000)));
  nic.pump();
  const used = (nic.read(0x08, 4) - nic.read(0x0c, 4)) >>> 0;
  assert.ok(used > 0 && used <= nicReceiveRingFillBytesMax, `${used} bytes in the ring`);
});
