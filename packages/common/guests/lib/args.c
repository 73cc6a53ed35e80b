/*
 * Guest arguments: the SYSINFO argument string holds space-separated key=value pairs, for example
 * "mb=32 rounds=100 seed=7". Parsing is plain C over a string so a host harness can test it.
 */
#include "hbft_rt.h"

static int is_separator(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int hbft_args_find(const char *args, const char *key, const char **value, uint32_t *value_len) {
  uint32_t key_len = (uint32_t)strlen(key);
  int found = 0;
  const char *p = args;
  while (*p != 0) {
    while (is_separator(*p)) p++;
    const char *token = p;
    while (*p != 0 && !is_separator(*p)) p++;
    uint32_t token_len = (uint32_t)(p - token);
    if (token_len > key_len && token[key_len] == '=' && memcmp(token, key, key_len) == 0) {
      *value = token + key_len + 1;
      *value_len = token_len - key_len - 1;
      found = 1;
    }
  }
  return found;
}

int hbft_parse_u64(const char *text, uint32_t len, uint64_t *out) {
  uint32_t base = 10, i = 0;
  if (len > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    base = 16;
    i = 2;
  }
  if (i == len) return 0;
  uint64_t value = 0;
  for (; i < len; i++) {
    char c = text[i];
    uint32_t digit;
    if (c >= '0' && c <= '9') digit = (uint32_t)(c - '0');
    else if (base == 16 && c >= 'a' && c <= 'f') digit = (uint32_t)(c - 'a' + 10);
    else if (base == 16 && c >= 'A' && c <= 'F') digit = (uint32_t)(c - 'A' + 10);
    else return 0;
    if (value > (UINT64_MAX - digit) / base) return 0;
    value = value * base + digit;
  }
  *out = value;
  return 1;
}

uint64_t hbft_args_u64(const char *args, const char *key, uint64_t dflt, uint64_t max) {
  const char *value;
  uint32_t value_len;
  if (!hbft_args_find(args, key, &value, &value_len)) return dflt;
  uint64_t number;
  if (!hbft_parse_u64(value, value_len, &number)) {
    hbft_printf("args: %s=%.*s is not a number (decimal or 0x hexadecimal)\n", key, (int)value_len,
                value);
    hbft_exit(2);
  }
  if (number > max) {
    hbft_printf("args: %s=%.*s is larger than %llu\n", key, (int)value_len, value,
                (unsigned long long)max);
    hbft_exit(2);
  }
  return number;
}

uint64_t hbft_arg_u64(const char *key, uint64_t dflt) {
  char args[HBFT_ARGS_BYTES_MAX + 1];
  hbft_sysinfo_args(args, sizeof args);
  return hbft_args_u64(args, key, dflt, UINT64_MAX);
}

uint32_t hbft_arg_u32(const char *key, uint32_t dflt) {
  char args[HBFT_ARGS_BYTES_MAX + 1];
  hbft_sysinfo_args(args, sizeof args);
  return (uint32_t)hbft_args_u64(args, key, dflt, UINT32_MAX);
}
