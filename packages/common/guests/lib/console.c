/*
 * Formatted output for guests: a printf small enough to read in one sitting. Output goes either to
 * the console (through hbft_putc) or into a caller's buffer; both share one formatter.
 */
#include "hbft_rt.h"

/* Where formatted characters go: a buffer (buf != NULL) or the console. */
struct format_sink {
  char *buf;
  uint32_t cap;
  uint32_t len; /* characters produced, including any that did not fit */
};

static void sink_put(struct format_sink *sink, char c) {
  if (sink->buf == NULL) {
    hbft_putc(c);
  } else if (sink->len + 1 < sink->cap) {
    sink->buf[sink->len] = c;
  }
  sink->len++;
}

static void sink_pad(struct format_sink *sink, char c, int count) {
  for (int i = 0; i < count; i++) sink_put(sink, c);
}

/* Formats one number: digits are produced into a small buffer backwards, then padded. */
static void format_number(struct format_sink *sink, uint64_t magnitude, int negative, uint32_t base,
                          int upper, int width, int zero_pad, int left_align) {
  char digits[24];
  int count = 0;
  const char *alphabet = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  do {
    digits[count++] = alphabet[magnitude % base];
    magnitude /= base;
  } while (magnitude != 0);
  int length = count + (negative ? 1 : 0);
  int padding = width > length ? width - length : 0;
  if (!left_align && !zero_pad) sink_pad(sink, ' ', padding);
  if (negative) sink_put(sink, '-');
  if (!left_align && zero_pad) sink_pad(sink, '0', padding);
  while (count > 0) sink_put(sink, digits[--count]);
  if (left_align) sink_pad(sink, ' ', padding);
}

static void format(struct format_sink *sink, const char *fmt, va_list ap) {
  for (const char *p = fmt; *p != 0; p++) {
    if (*p != '%') {
      sink_put(sink, *p);
      continue;
    }
    p++;
    int left_align = 0, zero_pad = 0;
    for (;; p++) {
      if (*p == '-') left_align = 1;
      else if (*p == '0') zero_pad = 1;
      else break;
    }
    int width = 0;
    if (*p == '*') {
      width = va_arg(ap, int);
      p++;
    } else {
      while (*p >= '0' && *p <= '9') width = width * 10 + (*p++ - '0');
    }
    int precision = -1;
    if (*p == '.') {
      p++;
      precision = 0;
      if (*p == '*') {
        precision = va_arg(ap, int);
        p++;
      } else {
        while (*p >= '0' && *p <= '9') precision = precision * 10 + (*p++ - '0');
      }
    }
    int longs = 0; /* 0: int, 1: long, 2: long long, 3: size_t */
    if (*p == 'l') {
      longs = 1;
      p++;
      if (*p == 'l') {
        longs = 2;
        p++;
      }
    } else if (*p == 'z') {
      longs = 3;
      p++;
    }
    char conversion = *p;
    if (conversion == 0) break;
    switch (conversion) {
      case 'd':
      case 'i': {
        int64_t value = longs == 2 ? va_arg(ap, long long)
                        : longs == 1 ? va_arg(ap, long)
                        : longs == 3 ? (int64_t)va_arg(ap, size_t)
                                     : va_arg(ap, int);
        uint64_t magnitude = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
        format_number(sink, magnitude, value < 0, 10, 0, width, zero_pad, left_align);
        break;
      }
      case 'u':
      case 'x':
      case 'X': {
        uint64_t value = longs == 2 ? va_arg(ap, unsigned long long)
                         : longs == 1 ? va_arg(ap, unsigned long)
                         : longs == 3 ? va_arg(ap, size_t)
                                      : va_arg(ap, unsigned int);
        format_number(sink, value, 0, conversion == 'u' ? 10 : 16, conversion == 'X', width,
                      zero_pad, left_align);
        break;
      }
      case 'p':
        sink_put(sink, '0');
        sink_put(sink, 'x');
        format_number(sink, (uintptr_t)va_arg(ap, void *), 0, 16, 0, width, 1, 0);
        break;
      case 'c': {
        char c = (char)va_arg(ap, int);
        if (!left_align) sink_pad(sink, ' ', width - 1);
        sink_put(sink, c);
        if (left_align) sink_pad(sink, ' ', width - 1);
        break;
      }
      case 's': {
        const char *s = va_arg(ap, const char *);
        if (s == NULL) s = "(null)";
        int length = 0;
        while (s[length] != 0 && (precision < 0 || length < precision)) length++;
        if (!left_align) sink_pad(sink, ' ', width - length);
        for (int i = 0; i < length; i++) sink_put(sink, s[i]);
        if (left_align) sink_pad(sink, ' ', width - length);
        break;
      }
      case '%':
        sink_put(sink, '%');
        break;
      default:
        /* An unknown conversion is printed as written, so the mistake is visible in the output. */
        sink_put(sink, '%');
        sink_put(sink, conversion);
        break;
    }
  }
}

void hbft_write(const char *bytes, uint32_t len) {
  for (uint32_t i = 0; i < len; i++) hbft_putc(bytes[i]);
}

void hbft_puts(const char *s) {
  while (*s != 0) hbft_putc(*s++);
  hbft_putc('\n');
}

void hbft_vprintf(const char *fmt, va_list ap) {
  struct format_sink sink = {NULL, 0, 0};
  format(&sink, fmt, ap);
}

void hbft_printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  hbft_vprintf(fmt, ap);
  va_end(ap);
}

uint32_t hbft_vsnprintf(char *buf, uint32_t cap, const char *fmt, va_list ap) {
  struct format_sink sink = {buf, cap, 0};
  format(&sink, fmt, ap);
  if (cap > 0) buf[sink.len < cap ? sink.len : cap - 1] = 0;
  return sink.len;
}

uint32_t hbft_snprintf(char *buf, uint32_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  uint32_t len = hbft_vsnprintf(buf, cap, fmt, ap);
  va_end(ap);
  return len;
}

void hbft_panic(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  hbft_printf("panic: ");
  hbft_vprintf(fmt, ap);
  hbft_printf("\n");
  va_end(ap);
  hbft_exit(1);
}
