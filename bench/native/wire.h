/*
 * The page protocol's framing for the bench's C tools (pageload.c, pagefloor.c): frame types,
 * sizes and big-endian byte helpers (docs/PROTOCOL.md, lib/service/frames.ts).
 * A frame is u32 length (header included), u8 type, u32 request id, payload.
 */
#ifndef STRATA_BENCH_WIRE_H
#define STRATA_BENCH_WIRE_H

#include <stdint.h>

#define PROTOCOL_VERSION 2
#define FRAME_HEADER_BYTES 9
#define PAGE_SIZE 8192
#define HELLO_OK_PAYLOAD_BYTES 18

enum {
  T_HELLO = 0x01,
  T_HELLO_OK = 0x02,
  T_REFUSE = 0x03,
  T_GET_PAGE = 0x10,
  T_PAGE = 0x20,
  T_THROTTLED = 0x2e,
  T_ERROR = 0x2f,
  T_PROTOCOL_VIOLATION = 0x30,
};

static inline void put_u16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
static inline void put_u64(uint8_t *p, uint64_t v) {
  put_u32(p, (uint32_t)(v >> 32));
  put_u32(p + 4, (uint32_t)v);
}
static inline uint32_t get_u16(const uint8_t *p) { return ((uint32_t)p[0] << 8) | p[1]; }
static inline uint32_t get_u32(const uint8_t *p) { return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]; }

#endif
