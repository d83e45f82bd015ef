/*
 * pageload: an open-loop GetPage load generator for Strata's page service (docs/PROTOCOL.md),
 * in C so that the generator's own pauses (a Node worker's garbage collections) do not land in
 * the latency it measures. bench/serve.js builds it on demand (build-bench/pageload) and runs it
 * for its paced runs; it speaks the same protocol version, handshake and key sequence as that
 * file's Node worker (xorshift32 keys over `pages` blocks of relation 1663/5/1 fork 0).
 *
 * Request i (0-based) is due at t0 + i / rate; every due request is sent without waiting for
 * answers, and its latency is answer time − due time, so a late send counts against the run
 * (no coordinated omission). Answers arriving inside [t0 + warmup, t0 + warmup + ms] are counted.
 * One thread: a nonblocking socket, pselect() until the next send is due (timer slack 1 µs), so the
 * pacing error is the kernel's wakeup latency (tens of µs, counted in the latency). --spin-us N
 * sleeps only until N µs before a send and spins the rest: a few µs of pacing error, but above
 * ~30 k/s the spin takes a whole core, which on a 2-core machine is half of what the server has
 * (measured: strata's p99 at 50 k/s 2.5-20 ms spinning, 1.3 ms sleeping).
 *
 * Output: one JSON line on stdout with the fields of bench/serve.js's worker: pagesPerSec,
 * requestsPerSec, p50Ms/p99Ms/maxMs (due time → answer), requests, throttled, errors (always 0:
 * an error ends the run), p99FromSendMs (send → answer), sendLagP50Ms/P99Ms/MaxMs (how late the
 * sends due in the window went out), generator "native". Exit 1 with a message
 * on stderr on a refused handshake, an ERROR or PROTOCOL_VIOLATION frame, or any frame that breaks
 * the protocol; exit 2 on bad arguments.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "wire.h"

/* ---- protocol constants (docs/PROTOCOL.md, lib/service/frames.ts; the framing is in wire.h) --- */

#define HELLO_MAGIC 0x53545250u
#define MAX_FRAME_BYTES (1u << 20)
#define MAX_STRING_BYTES 4096
#define LSNS_WIRE_BYTES 16
#define KEY_WIRE_BYTES 17
#define GET_PAGE_FRAME_BYTES (FRAME_HEADER_BYTES + LSNS_WIRE_BYTES + KEY_WIRE_BYTES)

/* The bench's keys (bench/serve.js keyOf): spc 1663, db 5, rel 1, fork 0, block i. */
#define KEY_SPC_OID 1663u
#define KEY_DB_OID 5u
#define KEY_REL_NUMBER 1u
#define KEY_FORK_NUM 0u

/* Wait this long for the handshake and, after the last send, for the last answers (the Node worker's request deadline). */
#define HANDSHAKE_TIMEOUT_MS 10000
#define DRAIN_TIMEOUT_MS 60000
/* Timer slack asked of Linux (default 50 µs), so that a pselect wakes close to its deadline. */
#define TIMER_SLACK_NS 1000
/* Upper bound of requests in one run (the per-request state is preallocated). */
#define MAX_REQUESTS 200000000.0

/* ---- small helpers ----------------------------------------------------------------------------- */

_Noreturn static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("pageload: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

_Noreturn static void usage(const char *msg) {
  fprintf(stderr,
          "pageload: %s\n"
          "usage: pageload --port P --tenant T --rate R --ms M --pages N [--host H] [--timeline TL]\n"
          "                [--token JWT] [--warmup-ms W] [--seed S] [--lsn L] [--spin-us N]\n"
          "       pageload --print-keys N --pages N [--seed S]\n",
          msg);
  exit(2);
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}


/* xorshift32, as bench/serve.js's rng: the same key sequence as the Node worker for a seed. */
static uint32_t rng_state;
static double rng_next(void) {
  uint32_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  rng_state = x;
  return (double)x / 4294967296.0;
}

/* keyOf(Math.floor(r() * pages)): the product is ≥ 0, so truncation is floor. */
static uint32_t next_block(uint32_t pages) { return (uint32_t)(rng_next() * (double)pages); }

/* ---- arguments --------------------------------------------------------------------------------- */

struct args {
  const char *host;
  const char *port;
  const char *tenant;
  const char *timeline;
  const char *token;
  double rate;
  double ms;
  double warmup_ms;
  /* --spin-us: spin this long before each send instead of sleeping up to it (default 0). */
  int64_t spin_ns;
  uint32_t pages;
  uint32_t seed;
  uint64_t lsn;
  /* --print-keys N: print the first N block numbers of the seed's sequence and exit (a test compares them with the Node worker's). */
  uint32_t print_keys;
};

static double parse_num(const char *name, const char *s, double min, double max) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v >= min && v <= max)) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s must be a number in [%g, %g]: got '%s'", name, min, max, s);
    usage(msg);
  }
  return v;
}

static void check_str16(const char *name, const char *s) {
  if (strlen(s) > MAX_STRING_BYTES) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s is longer than %d bytes", name, MAX_STRING_BYTES);
    usage(msg);
  }
}

static struct args parse_args(int argc, char **argv) {
  struct args a = {"127.0.0.1", NULL, NULL, "main", "", -1, -1, 0, 0, 1, 0x10, 0, 0};
  for (int i = 1; i < argc; i++) {
    const char *k = argv[i];
    if (i + 1 >= argc) usage("every option takes a value");
    const char *v = argv[++i];
    if (strcmp(k, "--host") == 0) a.host = v;
    else if (strcmp(k, "--port") == 0) a.port = v, parse_num("--port", v, 1, 65535);
    else if (strcmp(k, "--tenant") == 0) a.tenant = v;
    else if (strcmp(k, "--timeline") == 0) a.timeline = v;
    else if (strcmp(k, "--token") == 0) a.token = v;
    else if (strcmp(k, "--rate") == 0) a.rate = parse_num("--rate", v, 1e-3, 1e7);
    else if (strcmp(k, "--ms") == 0) a.ms = parse_num("--ms", v, 1, 3600e3);
    else if (strcmp(k, "--spin-us") == 0) a.spin_ns = (int64_t)(parse_num("--spin-us", v, 0, 1e6) * 1000.0);
    else if (strcmp(k, "--warmup-ms") == 0) a.warmup_ms = parse_num("--warmup-ms", v, 0, 3600e3);
    else if (strcmp(k, "--pages") == 0) a.pages = (uint32_t)parse_num("--pages", v, 1, 4294967295.0);
    else if (strcmp(k, "--seed") == 0) a.seed = (uint32_t)parse_num("--seed", v, 0, 4294967295.0);
    else if (strcmp(k, "--print-keys") == 0) a.print_keys = (uint32_t)parse_num("--print-keys", v, 1, 1e7);
    else if (strcmp(k, "--lsn") == 0) a.lsn = (uint64_t)parse_num("--lsn", v, 1, 9007199254740991.0);
    else {
      char msg[256];
      snprintf(msg, sizeof msg, "unknown option '%.200s'", k);
      usage(msg);
    }
  }
  if (a.print_keys > 0 && a.pages > 0) return a;
  if (a.port == NULL || a.tenant == NULL || a.rate < 0 || a.ms < 0 || a.pages == 0) usage("--port, --tenant, --rate, --ms and --pages are required");
  check_str16("--tenant", a.tenant);
  check_str16("--timeline", a.timeline);
  check_str16("--token", a.token);
  if (a.rate * (a.ms + a.warmup_ms) / 1000.0 > MAX_REQUESTS) usage("rate × (ms + warmup-ms) asks for too many requests");
  return a;
}

/* ---- connection -------------------------------------------------------------------------------- */

static int connect_to(const char *host, const char *port) {
  struct addrinfo hints, *res;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) die("cannot resolve %s:%s: %s", host, port, gai_strerror(rc));
  int fd = -1;
  int err = 0;
  for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    err = errno;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) die("connect to %s:%s: %s", host, port, strerror(err));
  int one = 1;
  /* As StrataClient (noDelay): each request goes out at once. */
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) die("setsockopt TCP_NODELAY: %s", strerror(errno));
  return fd;
}

static void write_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, 0);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) die("send: %s", strerror(errno));
    p += w;
    n -= (size_t)w;
  }
}

/* Bytes received and not yet taken as frames. */
struct inbuf {
  uint8_t *data;
  size_t len;
  size_t cap;
  uint64_t stream_off; /* offset in the stream of data[0], for messages */
};

/* A str16 at *off inside payload[0..n): bounds-checked; prints as at most MAX_STRING_BYTES. */
static int read_str16(const uint8_t *payload, size_t n, size_t *off, const uint8_t **s, size_t *len) {
  if (*off + 2 > n) return -1;
  size_t l = get_u16(payload + *off);
  if (*off + 2 + l > n) return -1;
  *s = payload + *off + 2;
  *len = l;
  *off += 2 + l;
  return 0;
}

/* REFUSE, ERROR, PROTOCOL_VIOLATION: code str16, message str16, nothing after. Exits. */
static void die_code_message(const char *what, uint32_t id, const uint8_t *payload, size_t n, uint64_t at) {
  const uint8_t *code, *msg;
  size_t code_len, msg_len, off = 0;
  if (read_str16(payload, n, &off, &code, &code_len) != 0 || read_str16(payload, n, &off, &msg, &msg_len) != 0 || off != n) {
    die("malformed %s frame (request id %u, %zu-byte payload) at stream offset %llu", what, id, n, (unsigned long long)at);
  }
  if (id != 0) die("%s for request %u: %.*s: %.*s", what, id, (int)code_len, (const char *)code, (int)msg_len, (const char *)msg);
  die("%s: %.*s: %.*s", what, (int)code_len, (const char *)code, (int)msg_len, (const char *)msg);
}

/* Reads until one whole frame is buffered or the timeout passes (blocking handshake). */
static void read_frame_blocking(int fd, struct inbuf *in, int64_t deadline_ns) {
  for (;;) {
    if (in->len >= 4) {
      uint32_t length = get_u32(in->data);
      if (length < FRAME_HEADER_BYTES || length > MAX_FRAME_BYTES) die("handshake answer has a frame length of %u bytes (must be 9 … %u)", length, MAX_FRAME_BYTES);
      if (in->len >= length) return;
    }
    int64_t left = deadline_ns - now_ns();
    if (left <= 0) die("no handshake answer within %d ms", HANDSHAKE_TIMEOUT_MS);
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(fd, &rd);
    struct timespec ts = {(time_t)(left / 1000000000), (long)(left % 1000000000)};
    int rc = pselect(fd + 1, &rd, NULL, NULL, &ts, NULL);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) die("pselect: %s", strerror(errno));
    if (rc == 0) continue;
    ssize_t r = recv(fd, in->data + in->len, in->cap - in->len, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die("recv during the handshake: %s", strerror(errno));
    if (r == 0) die("the server closed the connection during the handshake");
    in->len += (size_t)r;
  }
}

static void consume(struct inbuf *in, size_t n) {
  memmove(in->data, in->data + n, in->len - n);
  in->len -= n;
  in->stream_off += n;
}

/* HELLO, as StrataClient.connect sends it; then HELLO_OK, or the REFUSE's code and message. */
static void handshake(int fd, const struct args *a, struct inbuf *in) {
  size_t tl = strlen(a->tenant), ll = strlen(a->timeline), kl = strlen(a->token);
  size_t length = FRAME_HEADER_BYTES + 4 + 2 + 2 + tl + 2 + ll + 2 + kl;
  uint8_t *b = malloc(length);
  if (b == NULL) die("out of memory");
  put_u32(b, (uint32_t)length);
  b[4] = T_HELLO;
  put_u32(b + 5, 0);
  size_t off = FRAME_HEADER_BYTES;
  put_u32(b + off, HELLO_MAGIC);
  put_u16(b + off + 4, PROTOCOL_VERSION);
  off += 6;
  put_u16(b + off, (uint32_t)tl);
  memcpy(b + off + 2, a->tenant, tl);
  off += 2 + tl;
  put_u16(b + off, (uint32_t)ll);
  memcpy(b + off + 2, a->timeline, ll);
  off += 2 + ll;
  put_u16(b + off, (uint32_t)kl);
  memcpy(b + off + 2, a->token, kl);
  write_all(fd, b, length);
  free(b);

  read_frame_blocking(fd, in, now_ns() + (int64_t)HANDSHAKE_TIMEOUT_MS * 1000000);
  uint32_t flen = get_u32(in->data);
  uint8_t type = in->data[4];
  const uint8_t *payload = in->data + FRAME_HEADER_BYTES;
  size_t n = flen - FRAME_HEADER_BYTES;
  if (type == T_REFUSE) die_code_message("page service refused", 0, payload, n, 0);
  if (type == T_PROTOCOL_VIOLATION) die_code_message("page service reported a protocol violation", 0, payload, n, 0);
  if (type != T_HELLO_OK) die("the server answered the handshake with a frame of type 0x%02x", type);
  if (n != HELLO_OK_PAYLOAD_BYTES) die("HELLO_OK payload of %zu bytes (must be %d)", n, HELLO_OK_PAYLOAD_BYTES);
  uint32_t version = get_u16(payload);
  if (version != PROTOCOL_VERSION) die("HELLO_OK speaks protocol version %u (asked %d)", version, PROTOCOL_VERSION);
  consume(in, flen);
}

/* ---- the run ------------------------------------------------------------------------------------ */

enum { REQ_UNSENT = 0, REQ_OUTSTANDING = 1, REQ_ANSWERED = 2 };

struct run {
  int fd;
  struct inbuf in;
  /* Requests encoded and not yet fully written (the server stops reading at its in-flight limit). */
  uint8_t *out;
  size_t out_len, out_cap;
  /* Per request i (id i + 1): its state and send time; its due time is t0 + i / rate. */
  uint8_t *state;
  int64_t *sent_at;
  uint64_t total, sent, outstanding;
  int64_t t0, t_measure, t_end;
  double interval_ns;
  /* Latencies (ms) of answers inside the window, from due and from send; send lags (ms) of sends due inside it. */
  double *lat;
  double *from_send;
  uint64_t lat_n;
  double *lag;
  uint64_t lag_n;
  uint64_t throttled;
};

static int64_t due_ns(const struct run *r, uint64_t i) { return r->t0 + (int64_t)((double)i * r->interval_ns + 0.5); }

static void flush_out(struct run *r) {
  size_t done = 0;
  while (done < r->out_len) {
    ssize_t w = send(r->fd, r->out + done, r->out_len - done, 0);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (w < 0) die("send: %s", strerror(errno));
    done += (size_t)w;
  }
  memmove(r->out, r->out + done, r->out_len - done);
  r->out_len -= done;
}

static void encode_get_page(struct run *r, uint64_t i, const struct args *a) {
  if (r->out_len + GET_PAGE_FRAME_BYTES > r->out_cap) {
    r->out_cap = r->out_cap * 2 + GET_PAGE_FRAME_BYTES;
    r->out = realloc(r->out, r->out_cap);
    if (r->out == NULL) die("out of memory");
  }
  uint8_t *b = r->out + r->out_len;
  uint32_t block = next_block(a->pages);
  put_u32(b, GET_PAGE_FRAME_BYTES);
  b[4] = T_GET_PAGE;
  put_u32(b + 5, (uint32_t)(i + 1));
  /* notModifiedSince = requestLsn, as StrataClient sends for a fixed LSN. */
  put_u64(b + 9, a->lsn);
  put_u64(b + 17, a->lsn);
  put_u32(b + 25, KEY_SPC_OID);
  put_u32(b + 29, KEY_DB_OID);
  put_u32(b + 33, KEY_REL_NUMBER);
  b[37] = KEY_FORK_NUM;
  put_u32(b + 38, block);
  r->out_len += GET_PAGE_FRAME_BYTES;
}

/* The request an answer names: it must be one sent and not yet answered. */
static uint64_t take_request(struct run *r, uint32_t id, uint8_t type, uint64_t at) {
  if (id == 0 || id > r->sent || r->state[id - 1] != REQ_OUTSTANDING) {
    die("frame of type 0x%02x at stream offset %llu answers request id %u, which is not outstanding (%llu sent)", type, (unsigned long long)at, id, (unsigned long long)r->sent);
  }
  r->state[id - 1] = REQ_ANSWERED;
  r->outstanding--;
  return id - 1;
}

/* Every whole frame buffered: each must answer an outstanding request with a page (or THROTTLED). */
static void take_frames(struct run *r, int64_t t) {
  size_t off = 0;
  for (;;) {
    size_t avail = r->in.len - off;
    if (avail < 4) break;
    const uint8_t *f = r->in.data + off;
    uint64_t at = r->in.stream_off + off;
    uint32_t length = get_u32(f);
    if (length < FRAME_HEADER_BYTES || length > MAX_FRAME_BYTES) die("frame length %u at stream offset %llu (must be 9 … %u)", length, (unsigned long long)at, MAX_FRAME_BYTES);
    if (avail < length) break;
    uint8_t type = f[4];
    uint32_t id = get_u32(f + 5);
    const uint8_t *payload = f + FRAME_HEADER_BYTES;
    size_t n = length - FRAME_HEADER_BYTES;
    if (type == T_PAGE) {
      if (n != PAGE_SIZE) die("PAGE frame for request %u at stream offset %llu holds %zu bytes (must be %d)", id, (unsigned long long)at, n, PAGE_SIZE);
      uint64_t i = take_request(r, id, type, at);
      if (t >= r->t_measure && t <= r->t_end) {
        r->from_send[r->lat_n] = (double)(t - r->sent_at[i]) / 1e6;
        r->lat[r->lat_n++] = (double)(t - due_ns(r, i)) / 1e6;
      }
    } else if (type == T_THROTTLED) {
      /* As the Node worker: a throttled request is counted (when due in the window) and not retried. */
      const uint8_t *m;
      size_t ml, moff = 4;
      if (n < 4 || read_str16(payload, n, &moff, &m, &ml) != 0 || moff != n) die("malformed THROTTLED frame for request %u at stream offset %llu", id, (unsigned long long)at);
      uint64_t i = take_request(r, id, type, at);
      if (due_ns(r, i) >= r->t_measure) r->throttled++;
    } else if (type == T_ERROR) {
      die_code_message("ERROR", id, payload, n, at);
    } else if (type == T_PROTOCOL_VIOLATION) {
      die_code_message("PROTOCOL_VIOLATION", id, payload, n, at);
    } else {
      die("unexpected frame of type 0x%02x (request id %u) at stream offset %llu; a GET_PAGE is answered by PAGE 0x20", type, id, (unsigned long long)at);
    }
    off += length;
  }
  if (off > 0) consume(&r->in, off);
}

/* Read whatever the socket holds (nonblocking); returns 0 when nothing was there. */
static int read_available(struct run *r) {
  int got = 0;
  for (;;) {
    if (r->in.len == r->in.cap) die("internal: input buffer full");
    ssize_t n = recv(r->fd, r->in.data + r->in.len, r->in.cap - r->in.len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return got;
    if (n < 0) die("recv: %s", strerror(errno));
    if (n == 0) die("the server closed the connection with %llu requests unanswered", (unsigned long long)r->outstanding);
    int64_t t = now_ns();
    r->in.len += (size_t)n;
    got = 1;
    take_frames(r, t);
  }
}

/* Wait until `until` (or the socket is readable / writable while requests wait to go out). */
static void wait_until(struct run *r, int64_t until) {
  int64_t left = until - now_ns();
  if (left <= 0) return;
  fd_set rd, wr;
  FD_ZERO(&rd);
  FD_SET(r->fd, &rd);
  FD_ZERO(&wr);
  if (r->out_len > 0) FD_SET(r->fd, &wr);
  struct timespec ts = {(time_t)(left / 1000000000), (long)(left % 1000000000)};
  int rc = pselect(r->fd + 1, &rd, r->out_len > 0 ? &wr : NULL, NULL, &ts, NULL);
  if (rc < 0 && errno != EINTR) die("pselect: %s", strerror(errno));
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* bench/serve.js's q(): the sorted value at floor(n·x), or null. */
static void print_quantile(const char *name, const double *v, uint64_t n, double x) {
  if (n == 0) {
    printf("\"%s\":null", name);
    return;
  }
  uint64_t k = (uint64_t)((double)n * x);
  if (k > n - 1) k = n - 1;
  printf("\"%s\":%.6f", name, v[k]);
}

int main(int argc, char **argv) {
  struct args a = parse_args(argc, argv);
  rng_state = a.seed ? a.seed : 1;
  if (a.print_keys > 0) {
    for (uint32_t i = 0; i < a.print_keys; i++) printf("%u\n", next_block(a.pages));
    return 0;
  }
  signal(SIGPIPE, SIG_IGN);
#ifdef __linux__
  prctl(PR_SET_TIMERSLACK, (unsigned long)TIMER_SLACK_NS, 0, 0, 0);
#endif
  struct run r;
  memset(&r, 0, sizeof r);
  r.in.cap = 2 * (size_t)MAX_FRAME_BYTES;
  r.in.data = malloc(r.in.cap);
  if (r.in.data == NULL) die("out of memory");

  r.fd = connect_to(a.host, a.port);
  handshake(r.fd, &a, &r.in);
  if (fcntl(r.fd, F_SETFL, fcntl(r.fd, F_GETFL) | O_NONBLOCK) != 0) die("fcntl O_NONBLOCK: %s", strerror(errno));

  r.interval_ns = 1e9 / a.rate;
  r.t0 = now_ns();
  r.t_measure = r.t0 + (int64_t)(a.warmup_ms * 1e6 + 0.5);
  r.t_end = r.t_measure + (int64_t)(a.ms * 1e6 + 0.5);
  /* Requests due before t_end, as the Node worker's loop (at < tEnd). */
  r.total = (uint64_t)((double)(r.t_end - r.t0) / r.interval_ns);
  while (r.total > 0 && due_ns(&r, r.total - 1) >= r.t_end) r.total--;
  while (due_ns(&r, r.total) < r.t_end) r.total++;
  r.state = calloc(r.total + 1, 1);
  r.sent_at = malloc((r.total + 1) * sizeof *r.sent_at);
  r.lat = malloc((r.total + 1) * sizeof *r.lat);
  r.from_send = malloc((r.total + 1) * sizeof *r.from_send);
  r.lag = malloc((r.total + 1) * sizeof *r.lag);
  if (r.state == NULL || r.sent_at == NULL || r.lat == NULL || r.from_send == NULL || r.lag == NULL) die("out of memory for %llu requests", (unsigned long long)r.total);

  while (r.sent < r.total) {
    int64_t due = due_ns(&r, r.sent);
    int64_t t = now_ns();
    if (t < due) {
      read_available(&r);
      if (r.out_len > 0) flush_out(&r);
      if (due - now_ns() > a.spin_ns) wait_until(&r, due - a.spin_ns);
      continue;
    }
    /* Every request due by now goes out in one write. */
    while (r.sent < r.total && due_ns(&r, r.sent) <= t) {
      uint64_t i = r.sent;
      encode_get_page(&r, i, &a);
      r.state[i] = REQ_OUTSTANDING;
      r.sent_at[i] = t;
      r.sent++;
      r.outstanding++;
      if (due_ns(&r, i) >= r.t_measure) r.lag[r.lag_n++] = (double)(t - due_ns(&r, i)) / 1e6;
    }
    flush_out(&r);
  }
  int64_t drain_deadline = now_ns() + (int64_t)DRAIN_TIMEOUT_MS * 1000000;
  while (r.outstanding > 0 || r.out_len > 0) {
    if (now_ns() > drain_deadline) die("%llu requests still unanswered %d ms after the last send", (unsigned long long)r.outstanding, DRAIN_TIMEOUT_MS);
    if (r.out_len > 0) flush_out(&r);
    if (!read_available(&r)) wait_until(&r, now_ns() + 10000000);
  }
  shutdown(r.fd, SHUT_WR);
  close(r.fd);

  qsort(r.lat, r.lat_n, sizeof *r.lat, cmp_double);
  qsort(r.from_send, r.lat_n, sizeof *r.from_send, cmp_double);
  qsort(r.lag, r.lag_n, sizeof *r.lag, cmp_double);
  double secs = a.ms / 1000.0;
  printf("{\"pagesPerSec\":%.3f,\"requestsPerSec\":%.3f,", (double)r.lat_n / secs, (double)r.lat_n / secs);
  print_quantile("p50Ms", r.lat, r.lat_n, 0.5);
  putchar(',');
  print_quantile("p99Ms", r.lat, r.lat_n, 0.99);
  putchar(',');
  print_quantile("maxMs", r.lat, r.lat_n, 1.0);
  printf(",\"requests\":%llu,\"throttled\":%llu,\"errors\":0,", (unsigned long long)r.lat_n, (unsigned long long)r.throttled);
  print_quantile("p99FromSendMs", r.from_send, r.lat_n, 0.99);
  putchar(',');
  print_quantile("sendLagP50Ms", r.lag, r.lag_n, 0.5);
  putchar(',');
  print_quantile("sendLagP99Ms", r.lag, r.lag_n, 0.99);
  putchar(',');
  print_quantile("sendLagMaxMs", r.lag, r.lag_n, 1.0);
  printf(",\"generator\":\"native\"}\n");
  return 0;
}
