// Power-loss simulation for tests (docs/RELIABILITY.md, "Power loss"), modelled on SQLite's
// crash-test VFS. Preloaded (LD_PRELOAD) into a child process, it passes every file operation
// through but remembers, for files and directories under STRATA_POWERCUT_ROOT, what has not been
// made durable yet: file contents written since the file's last fsync, and creates, renames,
// unlinks and mkdirs since their directory's last fsync. At the N-th such operation
// (STRATA_POWERCUT_AT) it "cuts the power": every unsynced file is dropped back to its last synced
// contents, kept, or torn (a prefix, or random sectors of new, old and zero bytes), a random
// subset (or an ordered prefix) of the unsynced directory operations is undone, and the process
// exits at once with status 99 — what the disk could hold after a real power cut.
//
// Both cores are covered at once: the TS core and the engine do their I/O through Node's fs
// (libuv calls open/write/pwrite/fsync/rename/unlink from libc), the native core calls the same
// libc functions. Environment:
//   STRATA_POWERCUT_ROOT    directory whose files are tracked (absolute)
//   STRATA_POWERCUT_STASH   directory on the same filesystem for links to replaced/unlinked files
//   STRATA_POWERCUT_AT      cut before this tracked operation (1-based); 0 or unset: only count
//   STRATA_POWERCUT_SEED    seed for the tearing decisions
//   STRATA_POWERCUT_REPORT  file that receives "count N" at exit, or the cut's summary
//   STRATA_POWERCUT_MUTANT  test-only: "dirsync", "layer-fsync" or "manifest-fsync" ignores that
//                           kind of fsync, as if the code lacked it (the test must then fail)
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define SECTOR_BYTES 512
#define MAX_FDS 65536
#define CUT_EXIT_STATUS 99

typedef int (*open_fn)(const char*, int, ...);
typedef int (*openat_fn)(int, const char*, int, ...);
typedef ssize_t (*write_fn)(int, const void*, size_t);
typedef ssize_t (*pwrite_fn)(int, const void*, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec*, int);
typedef ssize_t (*pwritev_fn)(int, const struct iovec*, int, off_t);
typedef int (*fd_fn)(int);
typedef int (*path_fn)(const char*);
typedef int (*path2_fn)(const char*, const char*);
typedef int (*mkdir_fn)(const char*, mode_t);
typedef int (*ftruncate_fn)(int, off_t);

static struct {
  open_fn open, open64;
  openat_fn openat, openat64;
  write_fn write;
  pwrite_fn pwrite, pwrite64;
  writev_fn writev;
  pwritev_fn pwritev, pwritev64;
  fd_fn fsync, fdatasync, close;
  path_fn unlink, rmdir;
  path2_fn rename, link;
  mkdir_fn mkdir;
  ftruncate_fn ftruncate;
} real;

// A regular file written since its last fsync: how to get back to what was synced.
typedef struct FileRec {
  dev_t dev;
  ino_t ino;
  int keep_fd;        // while dirty: our own O_RDWR descriptor, to restore the inode wherever it is named
  int dirty;
  uint8_t* synced;    // contents at the last fsync (valid while dirty)
  size_t synced_len;
  char path[PATH_MAX];
  struct FileRec* next;
} FileRec;

typedef enum { OP_CREATE, OP_MKDIR, OP_RENAME, OP_UNLINK } DirOpKind;

// A directory operation not yet made durable by an fsync of its directory (both, for a rename).
typedef struct DirOp {
  DirOpKind kind;
  char path[PATH_MAX];   // created/unlinked path, or the rename's source
  char to[PATH_MAX];     // the rename's target
  char stash[PATH_MAX];  // link to the replaced (rename) or unlinked file; "" if none
  char dir[PATH_MAX];
  char to_dir[PATH_MAX];
  int pending_dir, pending_to_dir;
  struct DirOp* next;
} DirOp;

// libuv closes descriptors with a raw syscall on Linux, so close() is not always seen: an entry
// also records the inode, and one whose descriptor now names another inode is stale.
typedef struct {
  FileRec* file;  // a tracked writable regular file
  char* dir;      // a tracked directory (for its fsync)
  dev_t dev;
  ino_t ino;
} FdEntry;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_ready;
static char g_root[PATH_MAX];
static size_t g_root_len;
static char g_stash[PATH_MAX];
static char g_report[PATH_MAX];
static char g_mutant[32];
static uint64_t g_cut_at;
static uint64_t g_ops;
static uint64_t g_stash_n;
static uint64_t g_rng = 0x9e3779b97f4a7c15ULL;
static FdEntry g_fds[MAX_FDS];
static FileRec* g_files;
static DirOp* g_dirops;  // oldest first
static DirOp* g_dirops_tail;

static uint64_t rng_next(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return g_rng;
}
static uint64_t rng_below(uint64_t n) { return n == 0 ? 0 : rng_next() % n; }

#define RESOLVE(name) real.name = (__typeof__(real.name))dlsym(RTLD_NEXT, #name)

__attribute__((constructor)) static void init(void) {
  RESOLVE(open); RESOLVE(open64); RESOLVE(openat); RESOLVE(openat64);
  RESOLVE(write); RESOLVE(pwrite); RESOLVE(pwrite64); RESOLVE(writev); RESOLVE(pwritev); RESOLVE(pwritev64);
  RESOLVE(fsync); RESOLVE(fdatasync); RESOLVE(close); RESOLVE(unlink); RESOLVE(rmdir);
  RESOLVE(rename); RESOLVE(link); RESOLVE(mkdir); RESOLVE(ftruncate);
  const char* root = getenv("STRATA_POWERCUT_ROOT");
  const char* stash = getenv("STRATA_POWERCUT_STASH");
  if (root == NULL || root[0] != '/' || stash == NULL) return;
  snprintf(g_root, sizeof g_root, "%s", root);
  g_root_len = strlen(g_root);
  while (g_root_len > 1 && g_root[g_root_len - 1] == '/') g_root[--g_root_len] = '\0';
  snprintf(g_stash, sizeof g_stash, "%s", stash);
  const char* report = getenv("STRATA_POWERCUT_REPORT");
  if (report != NULL) snprintf(g_report, sizeof g_report, "%s", report);
  const char* mutant = getenv("STRATA_POWERCUT_MUTANT");
  if (mutant != NULL) snprintf(g_mutant, sizeof g_mutant, "%s", mutant);
  const char* at = getenv("STRATA_POWERCUT_AT");
  g_cut_at = at == NULL ? 0 : strtoull(at, NULL, 10);
  const char* seed = getenv("STRATA_POWERCUT_SEED");
  if (seed != NULL) g_rng ^= strtoull(seed, NULL, 10) * 0x2545f4914f6cdd1dULL + 1;
  // Unsynced files keep a descriptor each (all of them under a mutant); allow the hard limit.
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  g_ready = 1;
}

static void write_report(const char* text) {
  if (g_report[0] == '\0') return;
  int fd = real.open(g_report, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  size_t len = strlen(text);
  ssize_t n = real.write(fd, text, len);
  (void)n;
  real.close(fd);
}

__attribute__((destructor)) static void fini(void) {
  if (!g_ready) return;
  char text[64];
  snprintf(text, sizeof text, "count %llu\n", (unsigned long long)g_ops);
  write_report(text);
}

// Absolute form of `path` (relative to `dirfd`) if it lies under the root; 0 if not tracked.
static int tracked_path(int dirfd, const char* path, char* out) {
  if (!g_ready || path == NULL) return 0;
  if (path[0] == '/') {
    snprintf(out, PATH_MAX, "%s", path);
  } else {
    char base[PATH_MAX];
    if (dirfd == AT_FDCWD) {
      if (getcwd(base, sizeof base) == NULL) return 0;
    } else if (dirfd >= 0 && dirfd < MAX_FDS && g_fds[dirfd].dir != NULL) {
      snprintf(base, sizeof base, "%s", g_fds[dirfd].dir);
    } else {
      return 0;
    }
    snprintf(out, PATH_MAX, "%s/%s", base, path);
  }
  return strncmp(out, g_root, g_root_len) == 0 && (out[g_root_len] == '/' || out[g_root_len] == '\0');
}

static void dirname_of(const char* path, char* out) {
  snprintf(out, PATH_MAX, "%s", path);
  char* slash = strrchr(out, '/');
  if (slash == out) out[1] = '\0';
  else if (slash != NULL) *slash = '\0';
}

static const char* basename_of(const char* path) {
  const char* slash = strrchr(path, '/');
  return slash == NULL ? path : slash + 1;
}

static FileRec* find_file(dev_t dev, ino_t ino) {
  for (FileRec* f = g_files; f != NULL; f = f->next) {
    if (f->dev == dev && f->ino == ino) return f;
  }
  return NULL;
}

static uint8_t* read_all(int fd, size_t* len) {
  struct stat st;
  if (fstat(fd, &st) != 0) { *len = 0; return NULL; }
  size_t n = (size_t)st.st_size;
  uint8_t* buf = malloc(n == 0 ? 1 : n);
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, buf + done, n - done, (off_t)done);
    if (r <= 0) break;
    done += (size_t)r;
  }
  *len = done;
  return buf;
}

static void write_all_at(int fd, const uint8_t* buf, size_t len, off_t at) {
  size_t done = 0;
  while (done < len) {
    ssize_t r = real.pwrite(fd, buf + done, len - done, at + (off_t)done);
    if (r <= 0) return;
    done += (size_t)r;
  }
}

// Before a file's first change since its last fsync (through descriptor `fd`): remember what was synced.
static void mark_dirty(FileRec* f, int fd) {
  if (f->dirty) return;
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  f->keep_fd = real.open(proc, O_RDWR | O_CLOEXEC);
  if (f->keep_fd < 0) return;
  f->synced = read_all(f->keep_fd, &f->synced_len);
  f->dirty = 1;
}

static void mark_clean(FileRec* f) {
  if (!f->dirty) return;
  free(f->synced);
  f->synced = NULL;
  f->synced_len = 0;
  real.close(f->keep_fd);
  f->keep_fd = -1;
  f->dirty = 0;
}

static DirOp* add_dirop(DirOpKind kind, const char* path) {
  DirOp* op = calloc(1, sizeof *op);
  op->kind = kind;
  snprintf(op->path, PATH_MAX, "%s", path);
  dirname_of(path, op->dir);
  op->pending_dir = 1;
  if (g_dirops_tail == NULL) g_dirops = op;
  else g_dirops_tail->next = op;
  g_dirops_tail = op;
  return op;
}

static void stash_link(const char* path, char* out) {
  snprintf(out, PATH_MAX, "%s/s%llu", g_stash, (unsigned long long)++g_stash_n);
  if (real.link(path, out) != 0) out[0] = '\0';
}

// ---- the power cut ----

static int remove_entry(const char* path, const struct stat* st, int flag, struct FTW* ftw) {
  (void)st; (void)ftw;
  if (flag == FTW_DP) real.rmdir(path);
  else real.unlink(path);
  return 0;
}

static void undo_dirop(const DirOp* op) {
  switch (op->kind) {
    case OP_CREATE:
      real.unlink(op->path);
      break;
    case OP_MKDIR:
      nftw(op->path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
      break;
    case OP_RENAME:
      real.rename(op->to, op->path);
      if (op->stash[0] != '\0') real.link(op->stash, op->to);
      break;
    case OP_UNLINK:
      if (op->stash[0] != '\0') real.link(op->stash, op->path);
      break;
  }
}

// What an unsynced file holds after the cut: its synced contents, its current ones, or a tear.
static const char* settle_file(FileRec* f) {
  size_t cur_len;
  uint8_t* cur = read_all(f->keep_fd, &cur_len);
  const uint8_t* old = f->synced;
  size_t old_len = f->synced_len;
  const char* how;
  size_t out_len;
  uint8_t* out;
  switch (rng_below(4)) {
    case 0:  // nothing of the unsynced writes reached the disk
      how = "dropped";
      out_len = old_len;
      out = malloc(out_len + 1);
      memcpy(out, old, out_len);
      break;
    case 1:  // all of them did
      how = "kept";
      out_len = cur_len;
      out = malloc(out_len + 1);
      memcpy(out, cur, out_len);
      break;
    case 2: {  // the new size, new data up to a random sector, old data (or zeros) after it
      how = "torn-prefix";
      out_len = cur_len;
      out = calloc(out_len + 1, 1);
      size_t keep = rng_below(cur_len / SECTOR_BYTES + 1) * SECTOR_BYTES;
      for (size_t i = 0; i < out_len; i++) out[i] = i < keep ? cur[i] : (i < old_len ? old[i] : 0);
      break;
    }
    default: {  // either size; each sector new, old or zero
      how = "torn-sectors";
      out_len = rng_below(2) ? cur_len : old_len;
      out = calloc(out_len + 1, 1);
      for (size_t s = 0; s < out_len; s += SECTOR_BYTES) {
        uint64_t pick = rng_below(3);
        for (size_t i = s; i < s + SECTOR_BYTES && i < out_len; i++) {
          out[i] = pick == 0 ? (i < cur_len ? cur[i] : 0) : pick == 1 ? (i < old_len ? old[i] : 0) : 0;
        }
      }
      break;
    }
  }
  real.ftruncate(f->keep_fd, 0);
  write_all_at(f->keep_fd, out, out_len, 0);
  real.ftruncate(f->keep_fd, (off_t)out_len);
  free(out);
  free(cur);
  return how;
}

// Called with g_mu held, before tracked operation number g_ops: never returns.
static void power_cut(const char* what, const char* path) {
  char text[8192];
  int n = snprintf(text, sizeof text, "cut %llu before %s %s\n", (unsigned long long)g_ops, what, path);
  for (FileRec* f = g_files; f != NULL; f = f->next) {
    if (!f->dirty) continue;
    const char* how = settle_file(f);
    if (n < (int)sizeof text - 512) n += snprintf(text + n, sizeof text - n, "file %s %s\n", how, f->path);
  }
  int pending = 0;
  for (DirOp* op = g_dirops; op != NULL; op = op->next) pending += op->pending_dir || op->pending_to_dir;
  // Metadata reaches the disk either in order (a journal: a prefix survives) or in any order.
  const int ordered = (int)rng_below(2);
  const int keep_prefix = (int)rng_below((uint64_t)pending + 1);
  DirOp** undo = calloc((size_t)pending + 1, sizeof *undo);
  int undo_n = 0, seen = 0;
  for (DirOp* op = g_dirops; op != NULL; op = op->next) {
    if (!(op->pending_dir || op->pending_to_dir)) continue;
    const int keep = ordered ? seen < keep_prefix : (int)rng_below(2);
    seen++;
    if (!keep) undo[undo_n++] = op;
  }
  for (int i = undo_n - 1; i >= 0; i--) {
    undo_dirop(undo[i]);
    static const char* const kNames[] = {"create", "mkdir", "rename", "unlink"};
    if (n < (int)sizeof text - 512) n += snprintf(text + n, sizeof text - n, "undone %s %s\n", kNames[undo[i]->kind], undo[i]->path);
  }
  snprintf(text + n, sizeof text - n, "dirops %d pending, %d undone (%s)\n", pending, undo_n, ordered ? "ordered" : "any order");
  write_report(text);
  _exit(CUT_EXIT_STATUS);
}

// Count one tracked operation; cut the power before it if it is the chosen one.
static void tracked_op(const char* what, const char* path) {
  g_ops++;
  if (g_cut_at != 0 && g_ops == g_cut_at) power_cut(what, path);
}

// ---- descriptors ----

static void untrack_fd(int fd) {
  if (fd < 0 || fd >= MAX_FDS) return;
  free(g_fds[fd].dir);
  g_fds[fd].dir = NULL;
  g_fds[fd].file = NULL;
}

static void track_fd(int fd, const char* path, int flags) {
  if (fd < 0 || fd >= MAX_FDS) return;
  untrack_fd(fd);
  struct stat st;
  if (fstat(fd, &st) != 0) return;
  g_fds[fd].dev = st.st_dev;
  g_fds[fd].ino = st.st_ino;
  if (S_ISDIR(st.st_mode)) {
    g_fds[fd].dir = strdup(path);
    return;
  }
  if (!S_ISREG(st.st_mode) || (flags & O_ACCMODE) == O_RDONLY) return;
  FileRec* f = find_file(st.st_dev, st.st_ino);
  if (f == NULL) {
    f = calloc(1, sizeof *f);
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->keep_fd = -1;
    f->next = g_files;
    g_files = f;
  }
  snprintf(f->path, PATH_MAX, "%s", path);
  g_fds[fd].file = f;
}

// The descriptor's entry if it still names the inode it was opened on (else it is dropped).
static FdEntry* entry_of(int fd) {
  if (!g_ready || fd < 0 || fd >= MAX_FDS || (g_fds[fd].file == NULL && g_fds[fd].dir == NULL)) return NULL;
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_dev != g_fds[fd].dev || st.st_ino != g_fds[fd].ino) {
    untrack_fd(fd);
    return NULL;
  }
  return &g_fds[fd];
}

static int do_open(int dirfd, const char* path, int flags, mode_t mode, int use_at) {
  char abs[PATH_MAX];
  pthread_mutex_lock(&g_mu);
  if (!tracked_path(dirfd, path, abs)) {
    const int fd = use_at ? real.openat(dirfd, path, flags, mode) : real.open(path, flags, mode);
    const int saved = errno;
    if (g_ready) untrack_fd(fd);
    pthread_mutex_unlock(&g_mu);
    errno = saved;
    return fd;
  }
  struct stat before;
  const int existed = stat(abs, &before) == 0;
  const int creates = (flags & O_CREAT) && !existed;
  const int truncates = existed && (flags & O_TRUNC) && S_ISREG(before.st_mode) && before.st_size > 0;
  if (creates || truncates) tracked_op(creates ? "create" : "truncate", abs);
  if (truncates) {
    // Remember the synced contents before O_TRUNC discards them.
    const int tmp = real.open(abs, O_RDWR | O_CLOEXEC);
    if (tmp >= 0) {
      track_fd(tmp, abs, O_RDWR);
      if (g_fds[tmp].file != NULL) mark_dirty(g_fds[tmp].file, tmp);
      untrack_fd(tmp);
      real.close(tmp);
    }
  }
  const int fd = use_at ? real.openat(dirfd, path, flags, mode) : real.open(path, flags, mode);
  const int saved = errno;
  if (fd >= 0) {
    if (creates) add_dirop(OP_CREATE, abs);
    track_fd(fd, abs, flags);
    if (creates && fd < MAX_FDS && g_fds[fd].file != NULL) mark_dirty(g_fds[fd].file, fd);
  }
  pthread_mutex_unlock(&g_mu);
  errno = saved;
  return fd;
}

static mode_t mode_arg(int flags, va_list ap) {
  return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char* path, int flags, ...) {
  va_list ap; va_start(ap, flags); mode_t mode = mode_arg(flags, ap); va_end(ap);
  return do_open(AT_FDCWD, path, flags, mode, 0);
}
int open64(const char* path, int flags, ...) {
  va_list ap; va_start(ap, flags); mode_t mode = mode_arg(flags, ap); va_end(ap);
  return do_open(AT_FDCWD, path, flags, mode, 0);
}
int openat(int dirfd, const char* path, int flags, ...) {
  va_list ap; va_start(ap, flags); mode_t mode = mode_arg(flags, ap); va_end(ap);
  return do_open(dirfd, path, flags, mode, 1);
}
int openat64(int dirfd, const char* path, int flags, ...) {
  va_list ap; va_start(ap, flags); mode_t mode = mode_arg(flags, ap); va_end(ap);
  return do_open(dirfd, path, flags, mode, 1);
}

int close(int fd) {
  pthread_mutex_lock(&g_mu);
  if (g_ready) untrack_fd(fd);
  pthread_mutex_unlock(&g_mu);
  return real.close(fd);
}

// Marks a tracked file dirty before a write to it (counting the write as an operation).
static void before_write(int fd) {
  FdEntry* e = entry_of(fd);
  if (e == NULL || e->file == NULL) return;
  tracked_op("write", e->file->path);
  mark_dirty(e->file, fd);
}

#define WRITE_WRAPPER(ret, name, call, ...)   \
  ret name(__VA_ARGS__) {                     \
    pthread_mutex_lock(&g_mu);                \
    before_write(fd);                         \
    pthread_mutex_unlock(&g_mu);              \
    return call;                              \
  }

WRITE_WRAPPER(ssize_t, write, real.write(fd, buf, n), int fd, const void* buf, size_t n)
WRITE_WRAPPER(ssize_t, pwrite, real.pwrite(fd, buf, n, off), int fd, const void* buf, size_t n, off_t off)
WRITE_WRAPPER(ssize_t, pwrite64, real.pwrite64(fd, buf, n, off), int fd, const void* buf, size_t n, off_t off)
WRITE_WRAPPER(ssize_t, writev, real.writev(fd, iov, cnt), int fd, const struct iovec* iov, int cnt)
WRITE_WRAPPER(ssize_t, pwritev, real.pwritev(fd, iov, cnt, off), int fd, const struct iovec* iov, int cnt, off_t off)
WRITE_WRAPPER(ssize_t, pwritev64, real.pwritev64(fd, iov, cnt, off), int fd, const struct iovec* iov, int cnt, off_t off)
WRITE_WRAPPER(int, ftruncate, real.ftruncate(fd, len), int fd, off_t len)

static int do_sync(int fd, fd_fn sync) {
  pthread_mutex_lock(&g_mu);
  if (!g_ready) {
    pthread_mutex_unlock(&g_mu);
    return sync(fd);
  }
  FdEntry* e = entry_of(fd);
  const char* dir = e == NULL ? NULL : e->dir;
  FileRec* f = e == NULL ? NULL : e->file;
  if (f == NULL && dir == NULL) {
    // A descriptor opened read-only may still sync a tracked file.
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) f = find_file(st.st_dev, st.st_ino);
  }
  if (dir == NULL && f == NULL) {
    pthread_mutex_unlock(&g_mu);
    return sync(fd);
  }
  tracked_op("fsync", dir != NULL ? dir : f->path);
  const int r = sync(fd);
  const int saved = errno;
  if (r == 0 && dir != NULL && strcmp(g_mutant, "dirsync") != 0) {
    for (DirOp* op = g_dirops; op != NULL; op = op->next) {
      if (strcmp(op->dir, dir) == 0) op->pending_dir = 0;
      if (op->kind == OP_RENAME && strcmp(op->to_dir, dir) == 0) op->pending_to_dir = 0;
    }
  }
  if (r == 0 && f != NULL) {
    const int is_manifest = strncmp(basename_of(f->path), "manifest", 8) == 0;
    const int ignored = (strcmp(g_mutant, "layer-fsync") == 0 && !is_manifest) ||
                        (strcmp(g_mutant, "manifest-fsync") == 0 && is_manifest);
    if (!ignored) mark_clean(f);
  }
  pthread_mutex_unlock(&g_mu);
  errno = saved;
  return r;
}

int fsync(int fd) { return do_sync(fd, real.fsync); }
int fdatasync(int fd) { return do_sync(fd, real.fdatasync); }

int rename(const char* from, const char* to) {
  char a[PATH_MAX], b[PATH_MAX];
  pthread_mutex_lock(&g_mu);
  if (!tracked_path(AT_FDCWD, from, a) || !tracked_path(AT_FDCWD, to, b)) {
    pthread_mutex_unlock(&g_mu);
    return real.rename(from, to);
  }
  tracked_op("rename", a);
  char stash[PATH_MAX] = "";
  struct stat st;
  if (lstat(b, &st) == 0 && !S_ISDIR(st.st_mode)) stash_link(b, stash);
  const int r = real.rename(from, to);
  const int saved = errno;
  if (r == 0) {
    DirOp* op = add_dirop(OP_RENAME, a);
    snprintf(op->to, PATH_MAX, "%s", b);
    snprintf(op->stash, PATH_MAX, "%s", stash);
    dirname_of(b, op->to_dir);
    op->pending_to_dir = 1;
  }
  pthread_mutex_unlock(&g_mu);
  errno = saved;
  return r;
}

int unlink(const char* path) {
  char a[PATH_MAX];
  pthread_mutex_lock(&g_mu);
  if (!tracked_path(AT_FDCWD, path, a)) {
    pthread_mutex_unlock(&g_mu);
    return real.unlink(path);
  }
  tracked_op("unlink", a);
  char stash[PATH_MAX] = "";
  stash_link(a, stash);
  const int r = real.unlink(path);
  const int saved = errno;
  if (r == 0) snprintf(add_dirop(OP_UNLINK, a)->stash, PATH_MAX, "%s", stash);
  pthread_mutex_unlock(&g_mu);
  errno = saved;
  return r;
}

int mkdir(const char* path, mode_t mode) {
  char a[PATH_MAX];
  pthread_mutex_lock(&g_mu);
  if (!tracked_path(AT_FDCWD, path, a)) {
    pthread_mutex_unlock(&g_mu);
    return real.mkdir(path, mode);
  }
  tracked_op("mkdir", a);
  const int r = real.mkdir(path, mode);
  const int saved = errno;
  if (r == 0) add_dirop(OP_MKDIR, a);
  pthread_mutex_unlock(&g_mu);
  errno = saved;
  return r;
}
