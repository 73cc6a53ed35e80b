/*
 * hbft guest ABI: the address map and device registers of the emulated RV32IM machine.
 * The TypeScript side is packages/common/src/guest/addressMap.ts and devices/; a test checks that
 * both agree. All registers are 32-bit, little-endian, accessed with lw/sw.
 */
#ifndef HBFT_H
#define HBFT_H

/* Constants are unsigned in C; assembly files (which may include this header too) get plain numbers. */
#ifdef __ASSEMBLER__
#define HBFT_U(x) x
#else
#define HBFT_U(x) x##u
#include <stdint.h>
#define HBFT_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))
#endif

/* Test finisher (QEMU sifive_test): write PASS, or (code << 16) | FAIL. */
#define HBFT_FINISHER_BASE HBFT_U(0x00100000)
#define HBFT_FINISHER_PASS HBFT_U(0x5555)
#define HBFT_FINISHER_FAIL HBFT_U(0x3333)

/* CLINT: machine timer. mtime counts guest cycles at HBFT_SYSINFO_TIMEBASE_HZ. */
#define HBFT_CLINT_BASE HBFT_U(0x02000000)
#define HBFT_CLINT_MSIP (HBFT_CLINT_BASE + HBFT_U(0x0000))
#define HBFT_CLINT_MTIMECMP_LO (HBFT_CLINT_BASE + HBFT_U(0x4000))
#define HBFT_CLINT_MTIMECMP_HI (HBFT_CLINT_BASE + HBFT_U(0x4004))
#define HBFT_CLINT_MTIME_LO (HBFT_CLINT_BASE + HBFT_U(0xbff8))
#define HBFT_CLINT_MTIME_HI (HBFT_CLINT_BASE + HBFT_U(0xbffc))

/* Console: a write-only 16550 subset. Write a byte to THR; LSR bit 5 is always set (ready). */
#define HBFT_UART_BASE HBFT_U(0x10000000)
#define HBFT_UART_THR (HBFT_UART_BASE + HBFT_U(0x0))
#define HBFT_UART_LSR (HBFT_UART_BASE + HBFT_U(0x5))

/* System information (read-only). */
#define HBFT_SYSINFO_BASE HBFT_U(0x10002000)
#define HBFT_SYSINFO_RAM_BASE (HBFT_SYSINFO_BASE + HBFT_U(0x00))
#define HBFT_SYSINFO_RAM_SIZE (HBFT_SYSINFO_BASE + HBFT_U(0x04))
#define HBFT_SYSINFO_TIMEBASE_HZ (HBFT_SYSINFO_BASE + HBFT_U(0x08))
#define HBFT_SYSINFO_ARGS_LEN (HBFT_SYSINFO_BASE + HBFT_U(0x0c))
#define HBFT_SYSINFO_ARGS (HBFT_SYSINFO_BASE + HBFT_U(0x100)) /* bytes, read with lw; up to 3840 */

#define HBFT_RAM_BASE HBFT_U(0x80000000)

/*
 * Packet NIC: Ethernet frames (no FCS, at most HBFT_NET_FRAME_BYTES_MAX bytes) through two rings
 * of 8-byte descriptors (u32 buffer address, u32 length) in the guest's RAM, in the spirit of
 * virtio-net's split rings. Indices (AVAIL, USED, CONSUMED) are free-running 32-bit counts;
 * descriptor i sits at BASE + 8 * (i & (COUNT - 1)).
 *
 * Receive: the guest writes a buffer's address and capacity into descriptor RX_AVAIL and then
 *   advances RX_AVAIL (at most COUNT buffers outstanding). The device writes a frame into the
 *   buffer, overwrites the descriptor's length with the frame's, and advances RX_USED. The guest
 *   takes filled buffers in order and writes RX_CONSUMED; mip.MEIP is set while
 *   RX_USED != RX_CONSUMED. A frame larger than the next buffer is dropped (counted).
 * Transmit: the guest writes the frame's address and length into descriptor TX_AVAIL and advances
 *   TX_AVAIL; that write is the doorbell, and the device takes every frame up to it before the
 *   write returns (TX_USED == TX_AVAIL afterwards, every buffer free again). A descriptor with a
 *   bad length or address is skipped and sets STATUS bit 3.
 * Set-up: RX_BASE/COUNT and TX_BASE/COUNT (8-byte aligned, COUNT a power of two up to
 *   HBFT_NET_RING_DESCRIPTORS_MAX) are writable while disabled; enabling checks them (STATUS bit 2
 *   reports a refusal) and resets every index to 0. The MAC and the link state come from the host;
 *   a change of the link state sets STATUS bit 4 (and mip.MEIP) until the guest clears it.
 */
#define HBFT_NET_BASE HBFT_U(0x10008000)
#define HBFT_NET_ID (HBFT_NET_BASE + HBFT_U(0x00))        /* reads HBFT_NET_ID_VALUE */
#define HBFT_NET_MAC_LO (HBFT_NET_BASE + HBFT_U(0x04))    /* MAC bytes 0..3, byte 0 in bits 7:0 */
#define HBFT_NET_MAC_HI (HBFT_NET_BASE + HBFT_U(0x08))    /* MAC bytes 4..5 */
#define HBFT_NET_STATUS (HBFT_NET_BASE + HBFT_U(0x0c))
#define HBFT_NET_CTRL (HBFT_NET_BASE + HBFT_U(0x10))
#define HBFT_NET_FRAME_MAX (HBFT_NET_BASE + HBFT_U(0x14))
#define HBFT_NET_RX_BASE (HBFT_NET_BASE + HBFT_U(0x18))
#define HBFT_NET_RX_COUNT (HBFT_NET_BASE + HBFT_U(0x1c))
#define HBFT_NET_RX_AVAIL (HBFT_NET_BASE + HBFT_U(0x20))
#define HBFT_NET_RX_USED (HBFT_NET_BASE + HBFT_U(0x24))
#define HBFT_NET_RX_CONSUMED (HBFT_NET_BASE + HBFT_U(0x28))
#define HBFT_NET_TX_BASE (HBFT_NET_BASE + HBFT_U(0x2c))
#define HBFT_NET_TX_COUNT (HBFT_NET_BASE + HBFT_U(0x30))
#define HBFT_NET_TX_AVAIL (HBFT_NET_BASE + HBFT_U(0x34))
#define HBFT_NET_TX_USED (HBFT_NET_BASE + HBFT_U(0x38))
#define HBFT_NET_RX_DROPPED (HBFT_NET_BASE + HBFT_U(0x3c)) /* frames the guest never saw */

#define HBFT_NET_ID_VALUE HBFT_U(0x68626e74)
#define HBFT_NET_CTRL_ENABLE HBFT_U(1)
/* Checksum offload: asked for with the enabling write, read back set only when the device does it. */
#define HBFT_NET_CTRL_CHECKSUM_OFFLOAD HBFT_U(2)
#define HBFT_NET_STATUS_LINK_UP HBFT_U(1)
#define HBFT_NET_STATUS_RX_PENDING HBFT_U(2)
#define HBFT_NET_STATUS_CONFIG_ERROR HBFT_U(4)
#define HBFT_NET_STATUS_TX_ERROR HBFT_U(8)
/* The link went down and came back (the guest's cable moved to another host: a takeover). Sticky
   until the guest writes 1 to it; mip.MEIP is set while it is. */
#define HBFT_NET_STATUS_LINK_CHANGED HBFT_U(16)
#define HBFT_NET_DESCRIPTOR_BYTES HBFT_U(8)
#define HBFT_NET_RING_DESCRIPTORS_MAX HBFT_U(4096)
#define HBFT_NET_FRAME_BYTES_MAX HBFT_U(1514)

#ifndef __ASSEMBLER__
struct hbft_net_descriptor {
  uint32_t address;
  uint32_t length;
};
#endif

/* Machine-mode CSR bits used by guests. */
#define HBFT_MIE_MEIE (HBFT_U(1) << 11)
#define HBFT_MIE_MTIE (HBFT_U(1) << 7)
#define HBFT_MSTATUS_MIE (HBFT_U(1) << 3)

#endif
