/*
 * hbft guest ABI: the address map and device registers of the emulated RV32IM machine.
 * The TypeScript side is packages/common/src/guest/addressMap.ts and devices/; a test checks that
 * both agree. All registers are 32-bit, little-endian, accessed with lw/sw.
 */
#ifndef HBFT_H
#define HBFT_H

#include <stdint.h>

#define HBFT_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* Test finisher (QEMU sifive_test): write PASS, or (code << 16) | FAIL. */
#define HBFT_FINISHER_BASE 0x00100000u
#define HBFT_FINISHER_PASS 0x5555u
#define HBFT_FINISHER_FAIL 0x3333u

/* CLINT: machine timer. mtime counts guest cycles at HBFT_SYSINFO_TIMEBASE_HZ. */
#define HBFT_CLINT_BASE 0x02000000u
#define HBFT_CLINT_MSIP (HBFT_CLINT_BASE + 0x0000u)
#define HBFT_CLINT_MTIMECMP_LO (HBFT_CLINT_BASE + 0x4000u)
#define HBFT_CLINT_MTIMECMP_HI (HBFT_CLINT_BASE + 0x4004u)
#define HBFT_CLINT_MTIME_LO (HBFT_CLINT_BASE + 0xbff8u)
#define HBFT_CLINT_MTIME_HI (HBFT_CLINT_BASE + 0xbffcu)

/* Console: a write-only 16550 subset. Write a byte to THR; LSR bit 5 is always set (ready). */
#define HBFT_UART_BASE 0x10000000u
#define HBFT_UART_THR (HBFT_UART_BASE + 0x0u)
#define HBFT_UART_LSR (HBFT_UART_BASE + 0x5u)

/* System information (read-only). */
#define HBFT_SYSINFO_BASE 0x10002000u
#define HBFT_SYSINFO_RAM_BASE (HBFT_SYSINFO_BASE + 0x00u)
#define HBFT_SYSINFO_RAM_SIZE (HBFT_SYSINFO_BASE + 0x04u)
#define HBFT_SYSINFO_TIMEBASE_HZ (HBFT_SYSINFO_BASE + 0x08u)
#define HBFT_SYSINFO_ARGS_LEN (HBFT_SYSINFO_BASE + 0x0cu)
#define HBFT_SYSINFO_ARGS (HBFT_SYSINFO_BASE + 0x100u) /* bytes, read with lw; up to 3840 */

#define HBFT_RAM_BASE 0x80000000u

/*
 * Virtual NIC. Client byte streams reach the guest through two rings that the guest places in its
 * own RAM. Each ring holds records; a record is an 8-byte header (u16 type, u16 conn, u32 length)
 * followed by `length` payload bytes, and the next record starts at the next multiple of 8.
 * A record never wraps around the end of a ring: when the rest of the ring is too short, the
 * producer writes a PAD record covering it and continues at offset 0.
 * Offsets (HEAD, TAIL) are free-running byte counts; the ring position is offset & (SIZE - 1).
 *
 * Receive ring: the device produces (advances RX_HEAD), the guest consumes and writes RX_TAIL.
 *   OPEN (conn)          a client connected on slot `conn`
 *   DATA (conn, bytes)   bytes from the client, at most HBFT_NIC_RECORD_MAX per record
 *   CLOSE (conn)         the client hung up; the guest answers with a CLOSE of its own
 * Transmit ring: the guest produces records and writes TX_HEAD; that write is the doorbell, and
 * the device consumes every record up to TX_HEAD before the write returns (so TX_TAIL == TX_HEAD
 * afterwards and the whole ring is free again).
 *   DATA (conn, bytes)   bytes to the client
 *   CLOSE (conn)         close the connection; the slot may be reused afterwards
 * Interrupt: mip.MEIP is set while RX_HEAD != RX_TAIL. A guest can sleep with `wfi` after setting
 * mie.MEIE (it need not enable mstatus.MIE: wfi wakes on a pending enabled interrupt regardless).
 */
#define HBFT_NIC_BASE 0x10001000u
#define HBFT_NIC_RX_BASE (HBFT_NIC_BASE + 0x00u)
#define HBFT_NIC_RX_SIZE (HBFT_NIC_BASE + 0x04u)
#define HBFT_NIC_RX_HEAD (HBFT_NIC_BASE + 0x08u)
#define HBFT_NIC_RX_TAIL (HBFT_NIC_BASE + 0x0cu)
#define HBFT_NIC_TX_BASE (HBFT_NIC_BASE + 0x10u)
#define HBFT_NIC_TX_SIZE (HBFT_NIC_BASE + 0x14u)
#define HBFT_NIC_TX_HEAD (HBFT_NIC_BASE + 0x18u)
#define HBFT_NIC_TX_TAIL (HBFT_NIC_BASE + 0x1cu)
#define HBFT_NIC_CTRL (HBFT_NIC_BASE + 0x20u)       /* bit 0: enable (write after the rings are set) */
#define HBFT_NIC_STATUS (HBFT_NIC_BASE + 0x24u)     /* bit 0: rx pending; bit 1: bad tx record dropped; bit 2: bad ring config */
#define HBFT_NIC_CONN_MAX (HBFT_NIC_BASE + 0x28u)   /* number of connection slots */
#define HBFT_NIC_RECORD_MAX (HBFT_NIC_BASE + 0x2cu) /* largest DATA payload the device delivers */

#define HBFT_NIC_CTRL_ENABLE 1u
#define HBFT_NIC_STATUS_RX_PENDING 1u
#define HBFT_NIC_STATUS_TX_ERROR 2u
#define HBFT_NIC_STATUS_CONFIG_ERROR 4u /* enable refused: ring base/size invalid */

#define HBFT_NIC_PAD 0u
#define HBFT_NIC_OPEN 1u
#define HBFT_NIC_DATA 2u
#define HBFT_NIC_CLOSE 3u

#define HBFT_NIC_RING_SIZE_MIN 4096u
#define HBFT_NIC_RING_SIZE_MAX (16u * 1024u * 1024u)
#define HBFT_NIC_HEADER_BYTES 8u

struct hbft_nic_record {
  uint16_t type;
  uint16_t conn;
  uint32_t length;
  /* payload follows */
};

/* Machine-mode CSR bits used by guests. */
#define HBFT_MIE_MEIE (1u << 11)
#define HBFT_MIE_MTIE (1u << 7)
#define HBFT_MSTATUS_MIE (1u << 3)

#endif
