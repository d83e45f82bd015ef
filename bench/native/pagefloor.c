/*
 * pagefloor: the machine's floor for the page service's paced latency (bench/serve.js, "half").
 *
 * A server that does the least a page server can: it accepts connections on 127.0.0.1, answers
 * HELLO with HELLO_OK and every GET_PAGE with a PAGE of zeros, one blocking thread per
 * connection, no cache, no allocation per request. bench/native/pageload.c paced against it at
 * the same rate as against `strata serve` shows what the machine (scheduler, loopback TCP, the
 * generator's own core) costs before any server work: a p99 the real server cannot beat.
 *
 * usage: pagefloor            prints "port N" on stdout once listening; runs until killed.
 * Frames (docs/PROTOCOL.md): u32 length (header included), u8 type, u32 request id, payload.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire.h"

enum {
  /* A frame this server accepts: HELLO with its strings, or GET_PAGE. */
  MAX_FRAME_BYTES = 1 << 16,
  READ_BUFFER_BYTES = 1 << 20,
  MAX_IN_FLIGHT = 64,
  MAX_BATCH_PAGES = 32,
};

static int write_all(int fd, const uint8_t *b, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, b, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Answers one frame; -1 ends the connection (an unexpected frame type). */
static int answer(int fd, const uint8_t *frame, uint8_t *page_frame) {
  const uint8_t type = frame[4];
  const uint32_t id = get_u32(frame + 5);
  if (type == T_HELLO) {
    uint8_t ok[FRAME_HEADER_BYTES + HELLO_OK_PAYLOAD_BYTES] = {0};
    put_u32(ok, sizeof ok);
    ok[4] = T_HELLO_OK;
    put_u16(ok + 9, PROTOCOL_VERSION);
    put_u32(ok + 11, MAX_FRAME_BYTES);
    put_u16(ok + 15, MAX_IN_FLIGHT);
    put_u16(ok + 17, MAX_BATCH_PAGES);
    /* lastRecordLsn (ok + 19): 0, unused by pageload. */
    return write_all(fd, ok, sizeof ok);
  }
  if (type != T_GET_PAGE) return -1;
  put_u32(page_frame + 5, id);
  return write_all(fd, page_frame, FRAME_HEADER_BYTES + PAGE_SIZE);
}

static void *serve(void *arg) {
  const int fd = (int)(intptr_t)arg;
  uint8_t *buf = malloc(READ_BUFFER_BYTES);
  uint8_t *page_frame = calloc(1, FRAME_HEADER_BYTES + PAGE_SIZE);
  if (buf == NULL || page_frame == NULL) abort();
  put_u32(page_frame, FRAME_HEADER_BYTES + PAGE_SIZE);
  page_frame[4] = T_PAGE;
  size_t have = 0;
  for (;;) {
    ssize_t r = read(fd, buf + have, READ_BUFFER_BYTES - have);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    have += (size_t)r;
    size_t off = 0;
    while (have - off >= 4) {
      const uint32_t len = get_u32(buf + off);
      if (len < FRAME_HEADER_BYTES || len > MAX_FRAME_BYTES) goto done;
      if (have - off < len) break;
      if (answer(fd, buf + off, page_frame) != 0) goto done;
      off += len;
    }
    memmove(buf, buf + off, have - off);
    have -= off;
  }
done:
  close(fd);
  free(buf);
  free(page_frame);
  return NULL;
}

int main(void) {
  const int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof addr;
  if (ls < 0 || bind(ls, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(ls, 16) != 0 ||
      getsockname(ls, (struct sockaddr *)&addr, &alen) != 0) {
    perror("pagefloor: listen");
    return 1;
  }
  printf("port %u\n", ntohs(addr.sin_port));
  fflush(stdout);
  for (;;) {
    const int fd = accept(ls, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR) continue;
      perror("pagefloor: accept");
      return 1;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_t t;
    if (pthread_create(&t, NULL, serve, (void *)(intptr_t)fd) != 0) {
      close(fd);
      continue;
    }
    pthread_detach(t);
  }
}
