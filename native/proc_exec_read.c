/*
 * minewatch_native: the /proc read of an exec, done by the proc connector's reader thread the
 * moment the kernel's exec notice arrives (issue 16). The kernel tells only pid and tid of an
 * exec; everything else comes from /proc/PID. Read here, in C and off the JS thread, it costs no
 * JS call per file, the process is still there for all but the shortest commands, and the JS
 * thread gets the files with the notice (src/sources/proc-exec-read.ts turns them into the
 * process table's KernelExecFacts, so the table reads nothing).
 *
 * The read is framed by two image marks (comm, startcode/endcode/startstack from stat, the exe's
 * device and inode), as src/platform/procfs.ts frames its own: when they differ the process
 * exec'd again mid-read and the files could mix two images, so it is read again, up to
 * MW_EXEC_REREADS times, then given up (no files: the JS thread reads /proc itself, as before).
 * stat is opened once and read again at offset 0 for the closing mark.
 *
 * A blob is a run of records: u32 tag, u32 length, the bytes, zero-padded to 4. See MW_REC_*.
 * What could not be read is left out. No blob (NULL) when the process was gone, unreadable at
 * stat, or never settled.
 *
 * Reading cmdline or environ takes the target's mmap lock: a process holding it stalls this
 * thread (and the notices behind it) as it stalled the JS thread before; the kernel then drops
 * notices (counted), and the agent's drop recovery re-reads /proc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <stdatomic.h>
#include <unistd.h>

#include "proc_exec_read.h"

#define MW_EXEC_REREADS 3
#define OVERLAYFS_MAGIC 0x794c7630
#define SMALL_MAX (64 * 1024)
#define ARG_MAX_BYTES (1024 * 1024)

typedef struct {
  char *p;
  size_t len, cap;
} blob_t;

static int blob_reserve(blob_t *b, size_t more) {
  if (b->len + more <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + more) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) return -1;
  b->p = p;
  b->cap = cap;
  return 0;
}

/* Start a record; returns the offset of its length word, or -1. */
static long rec_begin(blob_t *b, uint32_t tag) {
  if (blob_reserve(b, 8) != 0) return -1;
  memcpy(b->p + b->len, &tag, 4);
  uint32_t zero = 0;
  memcpy(b->p + b->len + 4, &zero, 4);
  b->len += 8;
  return (long)b->len - 4;
}

static void rec_end(blob_t *b, long at, size_t n) {
  uint32_t len = (uint32_t)n;
  memcpy(b->p + at, &len, 4);
  b->len += n;
  while (b->len & 3) b->p[b->len++] = 0;
}

static int rec_bytes(blob_t *b, uint32_t tag, const void *data, size_t n) {
  long at = rec_begin(b, tag);
  if (at < 0 || blob_reserve(b, n + 3) != 0) return -1;
  memcpy(b->p + b->len, data, n);
  rec_end(b, at, n);
  return 0;
}

/* Read the whole file at dirfd/name (up to max) into a record. A read that leaves room has
 * reached the end (every file read here prints itself whole, or copies until the area ends).
 * Returns 0, or -1 when the file cannot be read (the record is then dropped). */
static int rec_file(blob_t *b, uint32_t tag, int dirfd, const char *name, size_t max) {
  int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  long at = rec_begin(b, tag);
  if (at < 0) {
    close(fd);
    return -1;
  }
  size_t got = 0, room = 4096;
  for (;;) {
    if (blob_reserve(b, got + room + 3) != 0) break;
    ssize_t n = read(fd, b->p + b->len + got, room);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      b->len = (size_t)at - 4; /* drop the record */
      return -1;
    }
    got += (size_t)n;
    if ((size_t)n < room || got >= max) break;
    room = got < max - got ? got : max - got; /* grow geometrically, never past max */
    if (room == 0) break;
  }
  close(fd);
  if (got > max) got = max;
  rec_end(b, at, got);
  return 0;
}

/* What the read takes of the exe's stat (exe_stat). */
typedef struct {
  uint64_t dev, ino, mode, uid, gid, size, mtime_ns, ctime_ns;
  uint64_t mnt;  /* the mount's id */
  int has_mnt;   /* statx gave the mount's id (Linux 5.8+): the filesystem cache may key on it */
} exe_id;

/* The mark of an image: comm and the code/stack addresses from a stat line, and the exe's file. */
typedef struct {
  char comm[64];
  char addrs[64];
  size_t comm_len, addr_len;
  uint64_t dev, ino;
} mark_t;

int mw_stat_split(const char *s, size_t n, mw_stat_line *out) {
  memset(out, 0, sizeof *out);
  const char *open = memchr(s, '(', n), *close = NULL;
  for (const char *q = s + n; q > s;) {
    if (*--q == ')') {
      close = q;
      break;
    }
  }
  if (!open || !close || close < open) return -1;
  out->comm = open + 1;
  out->comm_len = (size_t)(close - open - 1);
  out->end = s + n;
  const char *p = close + 2;
  for (int i = 3; i <= MW_STAT_LAST && p < out->end; i++) {
    out->field[i] = p;
    while (p < out->end && *p != ' ' && *p != '\n') p++;
    if (p < out->end) p++;
  }
  return 0;
}

size_t mw_stat_len(const mw_stat_line *l, int i) {
  const char *p = l->field[i];
  if (!p) return 0;
  const char *q = p;
  while (q < l->end && *q != ' ' && *q != '\n') q++;
  return (size_t)(q - p);
}

/* Fields 26-28 (startcode, endcode, startstack) and comm, and the exe's device and inode (0 and 0
 * when it could not be stat'ed). Compared field by field (same_mark): no formatted key. */
static int make_mark(const mw_stat_line *l, const exe_id *exe, int have_exe, mark_t *m) {
  if (!l->field[28]) return -1;
  m->comm_len = l->comm_len > sizeof m->comm ? sizeof m->comm : l->comm_len;
  memcpy(m->comm, l->comm, m->comm_len);
  size_t addrlen = (size_t)(l->field[28] + mw_stat_len(l, 28) - l->field[26]);
  m->addr_len = addrlen > sizeof m->addrs ? sizeof m->addrs : addrlen;
  memcpy(m->addrs, l->field[26], m->addr_len);
  m->dev = have_exe ? exe->dev : 0;
  m->ino = have_exe ? exe->ino : 0;
  return 0;
}

static int same_mark(const mark_t *a, const mark_t *b) {
  return a->comm_len == b->comm_len && a->addr_len == b->addr_len && a->dev == b->dev && a->ino == b->ino &&
         memcmp(a->comm, b->comm, a->comm_len) == 0 && memcmp(a->addrs, b->addrs, a->addr_len) == 0;
}

/* The status fields the JS side needs, parsed here: a status is ~1.4 KB of text of which a
 * dozen numbers are used, and parsing them in JS (strings, splits) was its largest item. Each
 * field is set where its line was found; `found` says which (bit i: field i). */
enum { F_PPID, F_RUID, F_EUID, F_RGID, F_EGID, F_VPID, F_CAPINH, F_CAPPRM, F_CAPEFF, F_COUNT };

static const char *skip_blank(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t')) p++;
  return p;
}

static const char *read_uint(const char *p, const char *end, int base, uint64_t *out, int *ok) {
  uint64_t v = 0;
  int digits = 0;
  for (; p < end; p++, digits++) {
    int d;
    if (*p >= '0' && *p <= '9') d = *p - '0';
    else if (base == 16 && *p >= 'a' && *p <= 'f') d = *p - 'a' + 10;
    else if (base == 16 && *p >= 'A' && *p <= 'F') d = *p - 'A' + 10;
    else break;
    v = v * (uint64_t)base + (uint64_t)d;
  }
  *out = v;
  *ok = digits > 0;
  return p;
}

static void parse_status(const char *s, size_t n, uint64_t *f, uint64_t *found) {
  const char *end = s + n;
  for (const char *line = s; line < end;) {
    const char *nl = memchr(line, '\n', (size_t)(end - line));
    const char *eol = nl ? nl : end;
    const char *colon = memchr(line, ':', (size_t)(eol - line));
    if (colon) {
      size_t klen = (size_t)(colon - line);
      const char *p = skip_blank(colon + 1, eol);
      uint64_t v[4];
      int ok = 0, k = 0;
#define KEY(lit) (klen == sizeof(lit) - 1 && memcmp(line, lit, klen) == 0)
      if (KEY("PPid")) {
        read_uint(p, eol, 10, &v[0], &ok);
        if (ok) f[F_PPID] = v[0], *found |= 1u << F_PPID;
      } else if (KEY("Uid") || KEY("Gid")) {
        for (k = 0; k < 4; k++) {
          p = skip_blank(read_uint(skip_blank(p, eol), eol, 10, &v[k], &ok), eol);
          if (!ok) break;
        }
        if (k == 4) {
          int g = line[0] == 'G';
          f[g ? F_RGID : F_RUID] = v[0];
          f[g ? F_EGID : F_EUID] = v[1];
          *found |= (1u << (g ? F_RGID : F_RUID)) | (1u << (g ? F_EGID : F_EUID));
        }
      } else if (KEY("NStgid")) {
        /* The last number: the id in the process's own pid namespace. */
        for (;;) {
          p = read_uint(skip_blank(p, eol), eol, 10, &v[0], &ok);
          if (!ok) break;
          f[F_VPID] = v[0];
          *found |= 1u << F_VPID;
        }
      } else if (KEY("CapInh") || KEY("CapPrm") || KEY("CapEff")) {
        int i = line[3] == 'I' ? F_CAPINH : line[3] == 'P' ? F_CAPPRM : F_CAPEFF;
        read_uint(p, eol, 16, &v[0], &ok);
        if (ok) f[i] = v[0], *found |= 1u << i;
      }
#undef KEY
    }
    line = eol + 1;
  }
}

/* The argument and environment areas of a stat line (fields 48 to 51: arg_start, arg_end,
 * env_start, env_end), 0 when it has them; zero where the kernel did not say (no mm). */
static int stat_areas(const mw_stat_line *l, uint64_t v[4]) {
  for (int i = 48; i <= 51; i++) {
    int ok = 0;
    if (l->field[i]) read_uint(l->field[i], l->end, 10, &v[i - 48], &ok);
    if (!ok) return -1;
  }
  return 0;
}

/* process_vm_readv refused (a Yama ptrace_scope of 3, an LSM): read the files from then on. */
static atomic_int vm_read_refused;

/*
 * cmdline and environ with one process_vm_readv: the two areas of the new image's memory that
 * /proc/PID/cmdline and /proc/PID/environ copy, at the addresses stat gave, without opening either
 * file (each open of a fresh process's /proc file builds an inode and a dentry: ~25 µs for the
 * two, against ~5 for this; issue 16). Returns 0 with both records added, or -1 with the blob as
 * it was, to read the files instead:
 *  - an argv end byte that is not NUL: the process rewrote its arguments (setproctitle), which
 *    cmdline reads by rules of its own;
 *  - an area over ARG_MAX_BYTES, empty or inverted, or a short copy (memory unmapped since).
 * An exec in between is caught by the closing image mark, as for the files.
 */
static int rec_areas(blob_t *b, int pid, const uint64_t a[4]) {
  if (atomic_load_explicit(&vm_read_refused, memory_order_relaxed)) return -1;
  uint64_t arg_len = a[1] - a[0], env_len = a[3] - a[2];
  if (a[0] == 0 || a[1] <= a[0] || a[3] < a[2] || arg_len > ARG_MAX_BYTES || env_len > ARG_MAX_BYTES) return -1;
  size_t before = b->len;
  if (blob_reserve(b, 16 + arg_len + env_len + 6) != 0) return -1;
  long at_c = rec_begin(b, MW_REC_CMDLINE);
  char *cmd = b->p + b->len;
  /* The environ record follows the cmdline's, padded to 4. */
  size_t env_rec = b->len + ((arg_len + 3) & ~(uint64_t)3);
  char *env = b->p + env_rec + 8;
  struct iovec local[2] = {{cmd, arg_len}, {env, env_len}};
  struct iovec remote[2] = {{(void *)(uintptr_t)a[0], arg_len}, {(void *)(uintptr_t)a[2], env_len}};
  ssize_t got = process_vm_readv(pid, local, env_len ? 2 : 1, remote, env_len ? 2 : 1, 0);
  if (got < 0 && (errno == EPERM || errno == EACCES || errno == ENOSYS)) atomic_store(&vm_read_refused, 1);
  if (got != (ssize_t)(arg_len + env_len) || cmd[arg_len - 1] != '\0') {
    b->len = before;
    return -1;
  }
  rec_end(b, at_c, arg_len);
  long at_e = rec_begin(b, MW_REC_ENVIRON);
  rec_end(b, at_e, env_len);
  return 0;
}

static ssize_t pread_all(int fd, char *buf, size_t size) {
  for (;;) {
    ssize_t n = pread(fd, buf, size, 0);
    if (n < 0 && errno == EINTR) continue;
    return n;
  }
}

/* struct statx as the kernel lays it out (linux/stat.h: 256 bytes since 4.11, stx_mnt_id since
 * 5.8), declared here and called through syscall(): glibc before 2.28 has no statx(), and headers
 * before 5.8 no stx_mnt_id. */
struct mw_statx_ts {
  int64_t sec;
  uint32_t nsec;
  int32_t reserved;
};
struct mw_statx {
  uint32_t mask, blksize;
  uint64_t attributes;
  uint32_t nlink, uid, gid;
  uint16_t mode, spare0;
  uint64_t ino, size, blocks, attributes_mask;
  struct mw_statx_ts atime, btime, ctime, mtime;
  uint32_t rdev_major, rdev_minor, dev_major, dev_minor;
  uint64_t mnt_id;
  uint64_t spare[13];
};
_Static_assert(sizeof(struct mw_statx) == 256, "struct statx is 256 bytes");
#define MW_STATX_BASIC 0x7ffU  /* STATX_BASIC_STATS */
#define MW_STATX_INO 0x100U
#define MW_STATX_MNT_ID 0x1000U
#define MW_STATX_MNT_ID_UNIQUE 0x4000U /* Linux 6.8: an id never reused (the plain one is, after an unmount) */

/* statx refused (ENOSYS, or EPERM from an old seccomp profile): fstatat from then on. */
static atomic_int statx_refused;

/* stat of /proc/PID/exe: 1 with `out` set, 0 when it cannot be stat'ed. */
static int exe_stat(int dirfd, exe_id *out) {
#ifdef SYS_statx
  if (!atomic_load_explicit(&statx_refused, memory_order_relaxed)) {
    struct mw_statx sx;
    if (syscall(SYS_statx, dirfd, "exe", 0, MW_STATX_BASIC | MW_STATX_MNT_ID | MW_STATX_MNT_ID_UNIQUE, &sx) == 0 && (sx.mask & MW_STATX_INO)) {
      *out = (exe_id){
          (uint64_t)makedev(sx.dev_major, sx.dev_minor), sx.ino, sx.mode, sx.uid, sx.gid, sx.size,
          (uint64_t)sx.mtime.sec * 1000000000ULL + sx.mtime.nsec, (uint64_t)sx.ctime.sec * 1000000000ULL + sx.ctime.nsec,
          sx.mnt_id, (sx.mask & (MW_STATX_MNT_ID | MW_STATX_MNT_ID_UNIQUE)) != 0,
      };
      return 1;
    }
    if (errno != ENOSYS && errno != EPERM) return 0;
    atomic_store(&statx_refused, 1);
  }
#endif
  struct stat st;
  if (fstatat(dirfd, "exe", &st, 0) != 0) return 0;
  *out = (exe_id){
      (uint64_t)st.st_dev, (uint64_t)st.st_ino, st.st_mode, st.st_uid, st.st_gid, (uint64_t)st.st_size,
      (uint64_t)st.st_mtim.tv_sec * 1000000000ULL + (uint64_t)st.st_mtim.tv_nsec,
      (uint64_t)st.st_ctim.tv_sec * 1000000000ULL + (uint64_t)st.st_ctim.tv_nsec, 0, 0,
  };
  return 1;
}

static void put_exe_stat(blob_t *b, const exe_id *e) {
  uint64_t v[8] = {e->dev, e->ino, e->mode, e->uid, e->gid, e->size, e->mtime_ns, e->ctime_ns};
  rec_bytes(b, MW_REC_EXE_STAT, v, sizeof v);
}

/*
 * The filesystem of an exe (statfs: its type, and the mount's flags), kept per mount and device
 * for FS_CACHE_NS: an exec storm runs a few binaries from a few mounts, and a statfs costs a path
 * walk through /proc/PID/exe and, on ext4, a sum of per-CPU counters the agent never reads (issue
 * 16). A remount (rw to ro) shows within FS_CACHE_NS. Per thread: the reader's, and a test's.
 */
#define FS_CACHE_SLOTS 8
#define FS_CACHE_NS 1000000000LL
typedef struct {
  uint64_t mnt, dev, type, flags;
  int64_t at;
} fs_slot;
static __thread fs_slot fs_cache[FS_CACHE_SLOTS];
static __thread unsigned fs_next;

static int64_t coarse_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
  return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* 0 with type and flags set, or -1 (the exe could not be statfs'ed). */
static int exe_fs(const char *exe_path, const exe_id *e, uint64_t *type, uint64_t *flags) {
  int keyed = e->has_mnt;
  uint64_t dev = e->dev;
  int64_t now = keyed ? coarse_ns() : 0;
  if (keyed) {
    for (unsigned i = 0; i < FS_CACHE_SLOTS; i++) {
      fs_slot *s = &fs_cache[i];
      if (s->at && s->mnt == e->mnt && s->dev == dev && now - s->at < FS_CACHE_NS) {
        *type = s->type;
        *flags = s->flags;
        return 0;
      }
    }
  }
  struct statfs sf;
  if (statfs(exe_path, &sf) != 0) return -1;
  *type = (uint64_t)sf.f_type;
  *flags = (uint64_t)sf.f_flags;
  if (keyed) fs_cache[fs_next++ % FS_CACHE_SLOTS] = (fs_slot){e->mnt, dev, *type, *flags, now ? now : 1};
  return 0;
}

int mw_proc_reaped(int pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d", pid);
  return faccessat(AT_FDCWD, path, F_OK, 0) != 0 && (errno == ENOENT || errno == ESRCH);
}

mw_exec_read *mw_read_exec(int pid, int flags, int *reaped) {
  char path[64];
  if (reaped) *reaped = 0;
  snprintf(path, sizeof path, "/proc/%d", pid);
  int dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) {
    if (reaped) *reaped = errno == ENOENT || errno == ESRCH;
    return NULL;
  }
  int statfd = openat(dirfd, "stat", O_RDONLY | O_CLOEXEC);
  if (statfd < 0) {
    if (reaped) *reaped = errno == ENOENT || errno == ESRCH;
    close(dirfd);
    return NULL;
  }
  char exe_path[80];
  snprintf(exe_path, sizeof exe_path, "/proc/%d/exe", pid);
  char stat1[1024], stat2[1024];
  blob_t b = {0};
  int ok = 0;
  for (int attempt = 0; attempt <= MW_EXEC_REREADS && !ok; attempt++) {
    b.len = 0;
    ssize_t n1 = pread_all(statfd, stat1, sizeof stat1);
    if (n1 <= 0) break; /* gone */
    exe_id exe1, exe2;
    int have1 = exe_stat(dirfd, &exe1);
    /* No exe: the process is exiting (its memory is gone, cmdline reads empty) or is a kernel
     * thread; the JS thread's read handles that as before, nothing here would help it. */
    if (!have1) break;
    mark_t m1, m2;
    mw_stat_line l1, l2;
    if (mw_stat_split(stat1, (size_t)n1, &l1) != 0 || make_mark(&l1, &exe1, have1, &m1) != 0) break;
    if (rec_bytes(&b, MW_REC_STAT, stat1, (size_t)n1) != 0) break;
    char link[4096];
    ssize_t ln = readlinkat(dirfd, "exe", link, sizeof link);
    if (ln > 0) rec_bytes(&b, MW_REC_EXE_LINK, link, (size_t)ln);
    uint64_t v[2];
    if (have1 && exe_fs(exe_path, &exe1, &v[0], &v[1]) == 0) {
      rec_bytes(&b, MW_REC_EXE_FS, v, sizeof v);
      /* On an overlay (a container's image), which layer it is on takes the process's mount
       * table: its root and mount namespace name it (the JS side reads and caches the table). */
      if (v[0] == OVERLAYFS_MAGIC) {
        ssize_t rn = readlinkat(dirfd, "root", link, sizeof link);
        if (rn > 0) rec_bytes(&b, MW_REC_ROOT_LINK, link, (size_t)rn);
        rn = readlinkat(dirfd, "ns/mnt", link, sizeof link);
        if (rn > 0) rec_bytes(&b, MW_REC_MNTNS_LINK, link, (size_t)rn);
      }
    }
    if (flags & MW_READ_STATUS) {
      /* status, parsed: MW_REC_STATUS_FIELDS. */
      char text[8192];
      int sfd = openat(dirfd, "status", O_RDONLY | O_CLOEXEC);
      ssize_t sn = -1;
      if (sfd >= 0) {
        do sn = read(sfd, text, sizeof text); while (sn < 0 && errno == EINTR);
        close(sfd);
      }
      if (sn > 0) {
        uint64_t f[F_COUNT + 1];
        memset(f, 0, sizeof f);
        parse_status(text, (size_t)sn, f, &f[F_COUNT]);
        rec_bytes(&b, MW_REC_STATUS_FIELDS, f, sizeof f);
      }
    } else {
      /* Only the ids, when nothing reads the vpid or the capabilities (issue 16): the kernel owns a
       * process's /proc/PID directory by its effective uid and gid, dumpable or not (fs/proc/base.c
       * task_dump_owner: stat'ing it is how ps learnt them before status existed), and a stat of
       * the open directory costs no dentry; a fresh process's status file costs one, and the
       * kernel's printing of some 1.4 KB, ~25-40 µs of the reader's time per exec. */
      struct stat ds;
      if (fstat(dirfd, &ds) == 0) {
        uint64_t f[F_COUNT + 1];
        memset(f, 0, sizeof f);
        f[F_EUID] = ds.st_uid;
        f[F_EGID] = ds.st_gid;
        f[F_COUNT] = (1u << F_EUID) | (1u << F_EGID);
        rec_bytes(&b, MW_REC_STATUS_FIELDS, f, sizeof f);
      }
    }
    uint64_t areas[4];
    if (stat_areas(&l1, areas) != 0 || rec_areas(&b, pid, areas) != 0) {
      rec_file(&b, MW_REC_CMDLINE, dirfd, "cmdline", ARG_MAX_BYTES);
      rec_file(&b, MW_REC_ENVIRON, dirfd, "environ", ARG_MAX_BYTES);
    }
    /* Only when the rules read it (src/sources/proc-connector.ts): a fresh process's file costs
     * an inode and a dentry, ~8 µs. Asked for, the record is there even when the file is not. */
    if ((flags & MW_READ_LOGINUID) && rec_file(&b, MW_REC_LOGINUID, dirfd, "loginuid", SMALL_MAX) != 0) rec_bytes(&b, MW_REC_LOGINUID, "", 0);
    rec_file(&b, MW_REC_CGROUP, dirfd, "cgroup", SMALL_MAX);
    ssize_t n2 = pread_all(statfd, stat2, sizeof stat2);
    if (n2 <= 0) break; /* gone in between: an exit, not an exec, but nothing to vouch for the files */
    int have2 = exe_stat(dirfd, &exe2);
    if (mw_stat_split(stat2, (size_t)n2, &l2) != 0 || make_mark(&l2, &exe2, have2, &m2) != 0) break;
    if (same_mark(&m1, &m2)) {
      /* The closing stat of the exe is the freshest. */
      if (have2) put_exe_stat(&b, &exe2);
      ok = 1;
    }
  }
  close(statfd);
  close(dirfd);
  if (!ok) {
    free(b.p);
    return NULL;
  }
  mw_exec_read *r = malloc(sizeof *r);
  if (!r) {
    free(b.p);
    return NULL;
  }
  r->data = b.p;
  r->len = b.len;
  return r;
}

void mw_exec_read_free(mw_exec_read *r) {
  if (!r) return;
  free(r->data);
  free(r);
}
