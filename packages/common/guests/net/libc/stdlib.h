/* The part of <stdlib.h> lwIP uses (atoi, in netif_find), implemented in net/hbft_netif.c. */
#ifndef HBFT_NET_LIBC_STDLIB_H
#define HBFT_NET_LIBC_STDLIB_H

int atoi(const char *text);

#endif
