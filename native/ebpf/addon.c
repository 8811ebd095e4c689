/*
 * minewatch_ebpf: loads minewatch.bpf.o with libbpf, attaches its tracepoints and hands the ring
 * buffer's records to JS in batches. A separate addon from minewatch_native (the proc connector),
 * built only where libbpf is installed, so a host without libbpf keeps the proc connector.
 *
 * JS API
 *   open(objectPath, options, callback) -> handle
 *       options: { selfTgid, fpu, openRead, fpuMin, sysFlags: Uint8Array(512), sysDesc?: Uint32Array(512),
 *                  ringBytes?, gatherUs?, quietUs?, btfPath? }   sysDesc: the generic path's descriptors (MW_DESC_*);
 *                  gatherUs: how long records gather after a wake-up (default GATHER_US_DEFAULT);
 *                  quietUs: how long quiet records may wait (MW_READER_QUIET; 0, the default: none is)
 *       Every reason it cannot work is thrown now, with err.code:
 *         ERR_NO_BTF        the kernel has no BTF (/sys/kernel/btf/vmlinux), or btfPath is missing
 *         ERR_BPF_OBJECT    the object file is missing or not a BPF object
 *         EPERM / EACCES    not privileged enough (CAP_BPF + CAP_PERFMON, or root)
 *         ERR_BPF_LOAD      the kernel refused a program (verifier); the message has libbpf's log
 *         ERR_BPF_ATTACH    a tracepoint could not be attached
 *       callback(batch, offsetNs, error, length) from the JS thread's event loop (the reader has no
 *       thread of its own): batch[0, length) holds whole records (minewatch.h). batch is the same
 *       Buffer every time, over the reader's own memory (no copy per batch, issue 16): it is
 *       overwritten by the next batch, so JS must copy whatever it keeps past the call (a Buffer
 *       of exactly `length` bytes, copied, where external buffers are not allowed). offsetNs: a
 *       bigint to add to the records' CLOCK_BOOTTIME stamps for epoch time, undefined while it is
 *       within OFFSET_SLACK_NS of the last one sent (keep using that). error: undefined, or why
 *       the reader stopped; after an error no batch comes.
 *   setQuiet(handle, epoch)   records may be quiet from now on, exec signatures marked under this
 *       epoch (a new one forgets those marked before: the rules changed); 0: none is quiet. Does
 *       nothing unless opened with quietUs.
 *   markQuiet(handle, sig)   execs of this signature (struct mw_exec's sig, a number) are quiet under
 *       the epoch in force: the agent evaluated one and nothing came of it. false if it could not be
 *       stored.
 *   stats(handle) -> { events, drops, queueDrops, fpu, missedWakeups, wakeups, quietSleeps }
 *       wakeups: the ring's records woke the reader; quietSleeps: quiet timers the reader slept on;
 *       drops: the ring buffer was full
 *       (kernel; while JS is busy the ring holds what comes), queueDrops: no memory for the batch;
 *       fpu: "on" | "off" | "missing" (no such tracepoint); missedWakeups: times the reader's idle
 *       timeout found records no wake-up announced (a bug)
 *   setSysFlags(handle, Uint8Array(512))   what to report from now on (the rules changed)
 *   setReadPolicy(handle, mode, prefixes: string[], comms: string[])   opens for reading only:
 *       MW_READ_NONE, _ALL or _PREFIX with these path prefixes (each at most MW_PREFIX_MAX bytes)
 *       and process names (comm, at most 15 bytes); replaces the last ones
 *   close(handle)   detach, stop the reader, free. Idempotent.
 *   nudge(cpu, times, intervalMs) -> boolean   the RandomX detector's sampler: a short-lived thread
 *       wakes `times` times on `cpu`, so whatever runs there is switched out (and its rounding
 *       mode read) that often; false when MAX_NUDGERS are already at work or cpu is not valid.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8 /* async cleanup hooks: the loop closes our handles before an environment ends */
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <uv.h>

#include "minewatch.h"

/* The batch handed to JS grows to BATCH_BYTES at most (then it goes, and the rest of the ring
 * follows in the next one); a quiet host sends small ones (one wake-up each). */
#define BATCH_BYTES (256 * 1024)
#define LOG_BYTES 8192
/* How long records gather after a wake-up (latency added: at most this, rounded up to libuv's
 * millisecond timers). It bounds the agent's wake-ups to one per gather at any rate, so the
 * batches stay large under a flood. The agent passes sources.ebpf.gather_ms: shorter is faster
 * alerts for more CPU when cold (issue 16). */
#define GATHER_US_DEFAULT 2000
/* The longest the reader waits with nothing to do before it looks at the ring anyway (see
 * wait_for_records): what it then finds, no wake-up announced (missedWakeups). */
#define IDLE_MS 1000
#define GATHER_US_MAX 100000
/* The longest a quiet record may wait (quietUs is capped here). */
#define QUIET_US_MAX 1000000
/* REALTIME - BOOTTIME moves only when the wall clock is stepped or the host resumes from suspend;
 * each measure of it differs by some tens of ns. A new one goes to JS (a bigint to create) only
 * when it moved by more than this. */
#define OFFSET_SLACK_NS 1000

/* The reader's libuv handles: they outlive the handle until libuv has closed them (on_uv_closed). */
typedef struct mw_ebpf mw_ebpf;
typedef struct {
  uv_poll_t poll;     /* the ring buffer's fd: readable once a record woke it */
  uv_timer_t gather;  /* the end of a gather, or of a quiet sleep */
  uv_timer_t idle;    /* the bound on a missed wake-up's cost (IDLE_MS) */
  int open;           /* handles not yet closed by libuv */
  napi_async_cleanup_hook_handle hook; /* the environment's end waits for them (closed from its hook) */
  mw_ebpf *c;         /* NULL once closed: no callback reaches a closed reader */
} mw_uv;

struct mw_ebpf {
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  struct bpf_object *obj;
  struct bpf_link *links[8];
  int nlinks;
  struct ring_buffer *rb;
  int counters_fd;
  int flags_fd;
  int stashed_fd;         /* sys_stashed: syscalls ever reported since load */
  uint8_t stashed[512];   /* what it holds */
  int read_policy_fd;
  int read_prefixes_fd;
  int read_comms_fd;
  int closed;
  int failed;             /* the ring could not be read: the error went to JS, the reader stopped */
  int in_callback;        /* JS is running from a batch (it may close the handle meanwhile) */
  int free_later;         /* the handle was finalized meanwhile: free it once JS returns */
  const char *fpu;
  mw_uv *uv;
  napi_async_cleanup_hook_handle cleanup; /* closes the reader when the environment ends */
  uint8_t *batch;         /* records gathered, BATCH_BYTES (touched only as far as used) */
  /* JS's Buffer over `batch` (created once at open): then the Buffer owns the memory, freed by its
   * finalizer once the reference is gone and no JS view is left. NULL: copy each batch instead. */
  napi_ref batch_ref;
  int64_t sent_offset;    /* the last boot offset JS was given */
  int offset_sent;
  size_t len;
  int full;               /* on_record stopped the ring's walk: the batch has no room left */
  int more;               /* drain() left records for the loop's next turn */
  int peek;               /* on_record only says a record is there (ring_has_records) */
  int suspect;            /* the idle timeout saw records the poll has not reported yet */
  uint64_t seen;          /* records the ring's walks have given (a nudge too) */
  long gather_ns;
  uint64_t gather_ms;
  uint64_t last_urgent_ts; /* the newest record's CLOCK_BOOTTIME stamp that was not quiet */
  uint64_t quiet_ms;      /* how long quiet records wait (0: the reader never sleeps on them) */
  int quiet_fd;           /* the quiet_execs map */
  uint64_t wakeups;       /* times the ring's records woke the reader (stats) */
  uint64_t quiet_sleeps;  /* quiet timers slept on (stats) */
  /* The reader_state map's value, mapped: its state says whether the BPF programs wake the reader,
   * its quiet_epoch whether records may be quiet. NULL when it could not be mapped (or once torn
   * down): the kernel's adaptive wake-up, as before, and no record is ever quiet. */
  struct mw_reader *reader;
  uint64_t queue_drops;
  /* Records found by the idle timeout rather than a wake-up: the wake-up protocol failed (tests). */
  uint64_t missed_wakeups;
};

/* ---- libbpf's messages: kept, so a refusal can say why ---- */

static char log_buf[LOG_BYTES];
static size_t log_len;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static int on_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap) {
  if (level == LIBBPF_DEBUG) return 0;
  char line[1024];
  int n = vsnprintf(line, sizeof line, fmt, ap);
  if (n <= 0) return 0;
  if ((size_t)n >= sizeof line) n = sizeof line - 1;
  pthread_mutex_lock(&log_lock);
  if (log_len + n >= LOG_BYTES) { /* keep the tail */
    size_t keep = LOG_BYTES / 2;
    memmove(log_buf, log_buf + log_len - keep, keep);
    log_len = keep;
  }
  memcpy(log_buf + log_len, line, n);
  log_len += n;
  log_buf[log_len] = '\0';
  pthread_mutex_unlock(&log_lock);
  return 0;
}

/* The last `max` bytes of libbpf's log, one line. */
static void log_tail(char *out, size_t max) {
  pthread_mutex_lock(&log_lock);
  size_t from = log_len > max - 1 ? log_len - (max - 1) : 0;
  snprintf(out, max, "%s", log_buf + from);
  pthread_mutex_unlock(&log_lock);
  for (char *p = out; *p; p++)
    if (*p == '\n' || *p == '\t') *p = ' ';
}

static void log_clear(void) {
  pthread_mutex_lock(&log_lock);
  log_len = 0;
  log_buf[0] = '\0';
  pthread_mutex_unlock(&log_lock);
}

static int64_t ts_ns(const struct timespec *t) { return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec; }

/* REALTIME - BOOTTIME, bracketed to halve the error. */
static int64_t boot_offset(void) {
  struct timespec b1, r, b2;
  clock_gettime(CLOCK_BOOTTIME, &b1);
  clock_gettime(CLOCK_REALTIME, &r);
  clock_gettime(CLOCK_BOOTTIME, &b2);
  return ts_ns(&r) - (ts_ns(&b1) + (ts_ns(&b2) - ts_ns(&b1)) / 2);
}

static napi_value throw_code(napi_env env, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static napi_value throw_code(napi_env env, const char *code, const char *fmt, ...) {
  char msg[1500];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  napi_throw_error(env, code, msg);
  return NULL;
}

/* ---- the reader, on the JS thread's event loop ----
 * No thread of its own: a thread meant a sleep, a wake-up and a hand-off through a thread-safe
 * function (a write to an eventfd, a futex) per gather, charged as system time to a second thread
 * and then again to the JS thread that was woken (issue 16). Here libuv watches the ring buffer's
 * fd with the agent's other fds, a timer ends each gather, and JS gets the batch straight from the
 * timer's callback. While JS is busy the ring buffer itself holds what comes (ringBytes; the
 * kernel counts what it cannot hold: drops, recovered from /proc by the agent).
 * Wake-ups are most of the cost, so there are as few as can be:
 *   - idle, the reader waits for the kernel to announce the first record (MW_READER_WAIT);
 *   - then it gathers for `gather` (MW_READER_GATHER: the kernel wakes no one), consumes, calls
 *     JS; while records that are not quiet are still coming at the end of a gather (the newest
 *     younger than half a gather), it gathers again straight away: one wake-up per gather under load;
 *   - when only quiet records came (minewatch.h, struct mw_reader: forks, exits, and execs of a
 *     command the agent has judged harmless before: an exec storm of one command), it sleeps on a
 *     timer of `quiet` instead (MW_READER_QUIET), and any other record wakes it at once and goes to
 *     JS straight away (what gathered meanwhile with it). The storm costs a wake-up per quiet timer
 *     rather than one per gather (issue 16: some 30 µs each here).
 */

/* Tell the BPF programs whether a record must wake the reader (minewatch.h, MW_READER_*). */
static void set_state(mw_ebpf *c, uint32_t s) {
  /* Sequentially consistent: a full barrier before the next look at the ring. */
  if (c->reader) __atomic_store_n(&c->reader->state, s, __ATOMIC_SEQ_CST);
}

static uint32_t reader_state(mw_ebpf *c) {
  return c->reader ? __atomic_load_n(&c->reader->state, __ATOMIC_SEQ_CST) : MW_READER_ANY;
}

/* The quiet epoch in force (setQuiet's), 0 while no record may be quiet. */
static uint32_t quiet_epoch(mw_ebpf *c) {
  return c->reader ? __atomic_load_n(&c->reader->quiet_epoch, __ATOMIC_RELAXED) : 0;
}

static int on_record(void *ctx, void *data, size_t size) {
  mw_ebpf *c = ctx;
  if (c->peek) return -EAGAIN; /* libbpf stops before this record: it stays in the ring */
  c->seen++;
  if (size < sizeof(struct mw_hdr)) return 0;
  if (!(((struct mw_hdr *)data)->kind & MW_KIND_QUIET)) c->last_urgent_ts = ((struct mw_hdr *)data)->ts;
  size_t padded = (size + 7) & ~(size_t)7; /* records stay 8-byte aligned for the JS decoder */
  if (c->len + padded > BATCH_BYTES) {
    /* Leave it in the ring (libbpf stops before it) until this batch has gone to JS. */
    c->seen--;
    c->full = 1;
    return -ENOSPC;
  }
  if (!c->batch && !(c->batch = malloc(BATCH_BYTES))) {
    c->queue_drops++;
    return 0;
  }
  memcpy(c->batch + c->len, data, size);
  struct mw_hdr *h = (void *)(c->batch + c->len);
  h->size = (unsigned short)size; /* the kernel's size, whatever the record claimed */
  if (padded > size) memset(c->batch + c->len + size, 0, padded - size);
  c->len += padded;
  return 0;
}

static uint64_t boot_now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_BOOTTIME, &t);
  return (uint64_t)ts_ns(&t);
}

/* Call JS with the batch (and the error, if any). 1: the handle was closed meanwhile (and maybe
 * freed): the caller returns at once without touching it. */
static int deliver(mw_ebpf *c, const char *error) {
  if (c->len == 0 && !error) return 0;
  napi_env env = c->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return 0;
  napi_value cb, recv, argv[4];
  void *dst;
  size_t len = c->len;
  int ok = napi_get_reference_value(env, c->callback, &cb) == napi_ok && cb && napi_get_global(env, &recv) == napi_ok; /* make_callback wants an object */
  c->len = 0;
  /* The batch: the one Buffer over our memory (a reference to fetch), else a copy (malloc, page
   * faults, an ArrayBuffer and its prototype set up: some 4 µs an exec under a storm, issue 16). */
  if (ok && c->batch_ref) ok = napi_get_reference_value(env, c->batch_ref, &argv[0]) == napi_ok && argv[0];
  else if (ok) ok = napi_create_buffer_copy(env, len, c->batch ? (void *)c->batch : (void *)"", &dst, &argv[0]) == napi_ok;
  int64_t offset = boot_offset();
  int64_t moved = offset - c->sent_offset;
  int new_offset = !c->offset_sent || moved > OFFSET_SLACK_NS || moved < -OFFSET_SLACK_NS;
  if (ok) ok = new_offset ? napi_create_bigint_int64(env, offset, &argv[1]) == napi_ok : napi_get_undefined(env, &argv[1]) == napi_ok;
  if (ok) ok = error ? napi_create_string_utf8(env, error, NAPI_AUTO_LENGTH, &argv[2]) == napi_ok : napi_get_undefined(env, &argv[2]) == napi_ok;
  if (ok) ok = napi_create_uint32(env, (uint32_t)len, &argv[3]) == napi_ok;
  if (ok) {
    if (new_offset) {
      c->sent_offset = offset;
      c->offset_sent = 1;
    }
    c->in_callback++;
    /* make_callback: the agent's promise jobs and nextTicks run when it returns, as after any I/O. */
    napi_status st = napi_make_callback(env, c->async, recv, cb, 4, argv, NULL);
    c->in_callback--;
    if (st == napi_pending_exception) {
      napi_value e;
      if (napi_get_and_clear_last_exception(env, &e) == napi_ok) napi_fatal_exception(env, e);
    }
  }
  napi_close_handle_scope(env, scope);
  if (c->free_later && !c->in_callback) {
    free(c);
    return 1;
  }
  return c->closed;
}

/* Consume what the ring holds, handing full batches to JS on the way. The records consumed (or
 * -1: closed meanwhile, do not touch c; -2: the ring could not be read, JS was told). Under a
 * flood it stops after DRAIN_BATCHES full batches, `more` set: the rest waits for the loop's next
 * turn, so a flood never keeps the agent's other work (its API, its timers) from running. */
#define DRAIN_BATCHES 4
static int64_t drain(mw_ebpf *c) {
  uint64_t before = c->seen;
  c->more = 0;
  for (int batches = 0;;) {
    c->full = 0;
    int n = ring_buffer__consume(c->rb);
    if (c->full) {
      if (deliver(c, NULL)) return -1;
      if (++batches < DRAIN_BATCHES) continue;
      c->more = 1;
      return (int64_t)(c->seen - before);
    }
    if (n < 0 && n != -EINTR) {
      char error[200];
      snprintf(error, sizeof error, "ebpf: reading the ring buffer failed: %s", strerror(-n));
      c->failed = 1;
      uv_poll_stop(&c->uv->poll);
      uv_timer_stop(&c->uv->gather);
      uv_timer_stop(&c->uv->idle);
      if (deliver(c, error)) return -1;
      return -2;
    }
    return (int64_t)(c->seen - before);
  }
}

static void on_ring_ready(uv_poll_t *h, int status, int events);
static void on_gather_end(uv_timer_t *t);
static void on_idle(uv_timer_t *t);
static void sleep_until_woken(mw_ebpf *c);

static void start_gather(mw_ebpf *c) {
  c->suspect = 0;
  /* Out of a quiet sleep (a flood): while gathering the kernel wakes no one, and the fd's level would. */
  uv_poll_stop(&c->uv->poll);
  set_state(c, MW_READER_GATHER);
  uv_update_time(c->uv->gather.loop); /* the loop's clock is from before this iteration's callbacks */
  /* Left over from a flood: at the loop's next turn, after what else is due. */
  uv_timer_start(&c->uv->gather, on_gather_end, c->more ? 0 : c->gather_ms, 0);
}

/* Sleep until the kernel announces a record: once the BPF programs know (WAIT) and the ring has
 * been looked at a last time (see emit() in minewatch.bpf.c). */
static void wait_for_records(mw_ebpf *c) {
  set_state(c, MW_READER_WAIT);
  int64_t n = drain(c);
  if (n < 0) return;
  if (n > 0) { /* came while the reader was going to sleep: gather as if woken */
    start_gather(c);
    return;
  }
  sleep_until_woken(c);
}

/* Watch the ring's fd for a record's wake-up (libuv's epoll: level-triggered, so a record written
 * before the watch starts makes it readable at once). 0, or -1: the reader failed, JS was told. */
static int watch_ring(mw_ebpf *c) {
  int err = uv_poll_start(&c->uv->poll, UV_READABLE, on_ring_ready);
  if (!err) return 0;
  char error[200];
  snprintf(error, sizeof error, "ebpf: cannot watch the ring buffer: %s", uv_strerror(err));
  c->failed = 1;
  deliver(c, error);
  return -1;
}

/* Watch the ring until a record's wake-up makes it readable. */
static void sleep_until_woken(mw_ebpf *c) {
  if (watch_ring(c)) return;
  /* The timeout only bounds what a missed wake-up could cost: the protocol leaves none. */
  uv_timer_start(&c->uv->idle, on_idle, IDLE_MS, IDLE_MS);
}

/* Sleep through quiet records for quiet_ms, woken at once by any other (MW_READER_QUIET). The
 * ring's fd stays watched from one quiet sleep to the next: watching it anew makes the kernel look
 * at it, and quiet records waiting there would wake the reader at once. */
static void sleep_quiet(mw_ebpf *c) {
  set_state(c, MW_READER_QUIET);
  /* What came before the state changed (a record that is not quiet among it would wake no one). */
  int64_t n = drain(c);
  if (n < 0) return;
  if (n > 0 && deliver(c, NULL)) return;
  if (c->failed) return;
  if (c->more) {
    start_gather(c);
    return;
  }
  uv_timer_stop(&c->uv->idle);
  if (!uv_is_active((uv_handle_t *)&c->uv->poll) && watch_ring(c)) return;
  c->quiet_sleeps++;
  uv_update_time(c->uv->gather.loop);
  /* Its end is a gather's: what came goes to JS. */
  uv_timer_start(&c->uv->gather, on_gather_end, c->quiet_ms, 0);
}

/* Records that are not quiet are still coming: gather again at once (as many wake-ups as gathers).
 * Only quiet ones came: sleep through them. Nothing came: wait for the next. */
static void after_batch(mw_ebpf *c, int64_t n) {
  if (c->more || (n > 0 && c->gather_ns > 0 && boot_now_ns() - c->last_urgent_ts < (uint64_t)c->gather_ns / 2)) start_gather(c);
  else if (n > 0 && c->quiet_ms && quiet_epoch(c)) sleep_quiet(c);
  else wait_for_records(c);
}

/* The end of a gather or of a quiet sleep no record cut short: consume, hand the batch to JS, then
 * gather again, sleep quietly or wait. */
static void gathered(mw_ebpf *c) {
  int64_t n = drain(c);
  if (n < 0) return;
  if (deliver(c, NULL)) return;
  if (c->failed) return;
  after_batch(c, n);
}


static void on_ring_ready(uv_poll_t *h, int status, int events) {
  (void)events;
  mw_uv *u = h->data;
  mw_ebpf *c = u->c;
  if (!c || c->closed || c->failed) return;
  uv_poll_stop(&u->poll);
  uv_timer_stop(&u->idle);
  uv_timer_stop(&u->gather); /* a quiet sleep's timer */
  c->wakeups++;
  c->suspect = 0;
  if (status < 0) {
    char error[200];
    snprintf(error, sizeof error, "ebpf: watching the ring buffer failed: %s", uv_strerror(status));
    c->failed = 1;
    deliver(c, error);
    return;
  }
  /* Woken out of a quiet sleep: by a record that is not quiet, among quiet ones that gathered
   * meanwhile (an exec storm of one command): to JS at once, the alert's latency is what is left
   * (the gather after it takes what follows). Else let a burst gather: one wake-up of the agent per
   * gather at most, instead of one per record (at 20,000 events/s that is most of its CPU). */
  if (c->gather_ns > 0 && reader_state(c) != MW_READER_QUIET) start_gather(c);
  else {
    set_state(c, MW_READER_GATHER);
    gathered(c);
  }
}

static void on_gather_end(uv_timer_t *t) {
  mw_uv *u = t->data;
  if (u->c && !u->c->closed && !u->c->failed) gathered(u->c);
}

/* Whether the ring holds a record, consuming none: 1, 0, or -1 (cannot be read). */
static int ring_has_records(mw_ebpf *c) {
  c->peek = 1;
  int n = ring_buffer__consume(c->rb);
  c->peek = 0;
  return n == -EAGAIN ? 1 : n < 0 && n != -EINTR ? -1 : 0;
}

/* The idle timeout, while the reader waits. Records in the ring now may have woken the poll
 * already, its callback not yet run (the loop runs timers first, and JS may have kept it busy):
 * they are a missed wake-up only if the poll still has not reported them a whole IDLE_MS later. */
static void on_idle(uv_timer_t *t) {
  mw_uv *u = t->data;
  mw_ebpf *c = u->c;
  if (!c || c->closed || c->failed) return;
  if (!c->suspect) {
    c->suspect = ring_has_records(c) > 0;
    return;
  }
  c->suspect = 0;
  int64_t n = drain(c);
  if (n <= 0) return;
  uv_poll_stop(&u->poll);
  uv_timer_stop(&u->idle);
  c->missed_wakeups++;
  if (deliver(c, NULL)) return;
  if (!c->failed) start_gather(c);
}

/* ---- JS ---- */

static void on_uv_closed(uv_handle_t *h) {
  mw_uv *u = h->data;
  if (--u->open > 0) return;
  if (u->hook) napi_remove_async_cleanup_hook(u->hook); /* the environment may end now */
  free(u);
}

static void teardown(mw_ebpf *c) {
  if (c->reader) munmap(c->reader, (size_t)sysconf(_SC_PAGESIZE));
  c->reader = NULL;
  for (int i = 0; i < c->nlinks; i++) bpf_link__destroy(c->links[i]);
  c->nlinks = 0;
  if (c->rb) ring_buffer__free(c->rb);
  c->rb = NULL;
  if (c->obj) bpf_object__close(c->obj);
  c->obj = NULL;
}

/* `hook`: called from the environment's async cleanup hook (its handle, removed once libuv has
 * closed our handles), else NULL. */
static void conn_close(mw_ebpf *c, napi_async_cleanup_hook_handle hook) {
  if (c->closed) return;
  c->closed = 1;
  if (c->uv) {
    /* Closed first: libuv stops watching the fd (at once) before teardown closes it, and no
     * callback comes after this. The handles' memory goes when libuv is done with them. */
    c->uv->c = NULL;
    c->uv->hook = hook;
    uv_close((uv_handle_t *)&c->uv->poll, on_uv_closed);
    uv_close((uv_handle_t *)&c->uv->gather, on_uv_closed);
    uv_close((uv_handle_t *)&c->uv->idle, on_uv_closed);
    c->uv = NULL;
  } else if (hook) {
    napi_remove_async_cleanup_hook(hook);
  }
  /* Detach first: the kernel stops producing before the buffer goes away. */
  teardown(c);
  /* JS's Buffer owns the memory: it goes with the Buffer, once no view of it is left (JS may be
   * decoding it right now: close() from inside a batch). */
  if (c->batch_ref) {
    if (!hook) napi_delete_reference(c->env, c->batch_ref);
  } else {
    free(c->batch);
  }
  c->batch_ref = NULL;
  c->batch = NULL;
  c->len = 0;
  if (!hook) {
    if (c->callback) napi_delete_reference(c->env, c->callback);
    if (c->async) napi_async_destroy(c->env, c->async);
    if (c->cleanup) napi_remove_async_cleanup_hook(c->cleanup);
  }
  c->callback = NULL;
  c->async = NULL;
  c->cleanup = NULL;
}

static void cleanup_hook(napi_async_cleanup_hook_handle hook, void *arg) { conn_close(arg, hook); }

static void batch_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

/* The batch's memory and JS's one Buffer over it (see deliver). Without memory now, on_record tries
 * again (queueDrops while it cannot); where external buffers are not allowed, batches are copied. */
static void share_batch(napi_env env, mw_ebpf *c) {
  napi_value buf;
  if (!(c->batch = malloc(BATCH_BYTES))) return;
  napi_status st = napi_create_external_buffer(env, BATCH_BYTES, c->batch, batch_finalize, NULL, &buf);
  if (st != napi_ok) return; /* still ours: copy mode */
  /* The Buffer owns it now: without a reference, it is the garbage collector's, not ours to use. */
  if (napi_create_reference(env, buf, 1, &c->batch_ref) != napi_ok) {
    c->batch_ref = NULL;
    c->batch = NULL;
  }
}

static void handle_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  mw_ebpf *c = data;
  conn_close(c, NULL);
  if (c->in_callback) c->free_later = 1; /* freed by deliver() once JS returns */
  else free(c);
}

static int get_prop(napi_env env, napi_value obj, const char *name, napi_value *out) {
  bool has = false;
  if (napi_has_named_property(env, obj, name, &has) != napi_ok || !has) return 0;
  return napi_get_named_property(env, obj, name, out) == napi_ok;
}

static uint32_t get_u32(napi_env env, napi_value obj, const char *name, uint32_t dflt) {
  napi_value v;
  uint32_t out = dflt;
  if (get_prop(env, obj, name, &v)) napi_get_value_uint32(env, v, &out);
  return out;
}

static int get_flag(napi_env env, napi_value obj, const char *name) {
  napi_value v;
  bool out = false;
  if (get_prop(env, obj, name, &v)) napi_get_value_bool(env, v, &out);
  return out;
}

/* Where a global of .rodata lives in the map's initial image, from the object's BTF. */
static void *rodata_var(struct bpf_object *obj, struct bpf_map *rodata, const char *name, size_t want) {
  struct btf *btf = bpf_object__btf(obj);
  size_t size = 0;
  uint8_t *img = (uint8_t *)(uintptr_t)bpf_map__initial_value(rodata, &size); /* libbpf 1.1 says const; the image is ours until load */
  if (!btf || !img) return NULL;
  int id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
  if (id < 0) return NULL;
  const struct btf_type *sec = btf__type_by_id(btf, id);
  const struct btf_var_secinfo *v = btf_var_secinfos(sec);
  for (int i = 0; i < btf_vlen(sec); i++, v++) {
    const struct btf_type *var = btf__type_by_id(btf, v->type);
    if (strcmp(btf__name_by_offset(btf, var->name_off), name) == 0 && v->size == want && v->offset + want <= size)
      return img + v->offset;
  }
  return NULL;
}

/* Write the per-syscall flags into the kernel's map: 0 on success, -1 with errno. */
static int set_flags(mw_ebpf *c, const uint8_t flags[512]) {
  uint32_t one = 1;
  for (uint32_t nr = 0; nr < 512; nr++) {
    uint32_t v = flags[nr];
    /* Marked before it is reported, and never unmarked (the exit of a call begun under these
     * flags must find its arguments whatever the next flags say). */
    if (v && !c->stashed[nr]) {
      if (bpf_map_update_elem(c->stashed_fd, &nr, &one, BPF_ANY) != 0) return -1;
      c->stashed[nr] = 1;
    }
    if (bpf_map_update_elem(c->flags_fd, &nr, &v, BPF_ANY) != 0) return -1;
  }
  return 0;
}

/* A Uint8Array or Uint32Array option copied into `out` (at most `max` bytes); 0 when absent. */
static size_t get_typed(napi_env env, napi_value opts, const char *name, napi_typedarray_type want, void *out, size_t max) {
  napi_value v;
  bool is_ta = false;
  if (!get_prop(env, opts, name, &v) || napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return 0;
  napi_typedarray_type tt;
  size_t len;
  void *data;
  napi_value ab;
  size_t off;
  napi_get_typedarray_info(env, v, &tt, &len, &data, &ab, &off);
  if (tt != want) return 0;
  size_t bytes = len * (want == napi_uint32_array ? 4 : 1);
  if (bytes > max) bytes = max;
  memcpy(out, data, bytes);
  return bytes;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], resource, handle;
  napi_valuetype t;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3 || napi_typeof(env, argv[2], &t) != napi_ok || t != napi_function)
    return throw_code(env, "ERR_INVALID_ARG_TYPE", "open(objectPath, options, callback): callback must be a function");
  char path[4096], btf_path[4096] = "";
  size_t n;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &n) != napi_ok)
    return throw_code(env, "ERR_INVALID_ARG_TYPE", "open: objectPath must be a string");
  napi_value opts = argv[1], v;
  struct mw_config cfg = {0};
  cfg.self_tgid = get_u32(env, opts, "selfTgid", (uint32_t)getpid());
  cfg.fpu = get_flag(env, opts, "fpu");
  cfg.open_read = get_flag(env, opts, "openRead");
  cfg.fpu_min = get_u32(env, opts, "fpuMin", 16);
  uint32_t ring = get_u32(env, opts, "ringBytes", 16u << 20);
  uint32_t gather_us = get_u32(env, opts, "gatherUs", GATHER_US_DEFAULT);
  if (gather_us > GATHER_US_MAX) gather_us = GATHER_US_MAX;
  uint32_t quiet_us = get_u32(env, opts, "quietUs", 0);
  if (quiet_us > QUIET_US_MAX) quiet_us = QUIET_US_MAX;
  uint8_t flags[512] = {0};
  if (get_prop(env, opts, "sysFlags", &v)) {
    bool is_ta = false;
    napi_is_typedarray(env, v, &is_ta);
    if (is_ta) {
      napi_typedarray_type tt;
      size_t len;
      void *data;
      napi_get_typedarray_info(env, v, &tt, &len, &data, NULL, NULL);
      if (tt == napi_uint8_array) memcpy(flags, data, len < sizeof flags ? len : sizeof flags);
    }
  }
  if (get_prop(env, opts, "btfPath", &v)) napi_get_value_string_utf8(env, v, btf_path, sizeof btf_path, &n);
  uint32_t desc[512] = {0};
  get_typed(env, opts, "sysDesc", napi_uint32_array, desc, sizeof desc);

  /* BTF first: without it nothing relocates, and libbpf's own message would be about the object. */
  const char *btf_file = btf_path[0] ? btf_path : "/sys/kernel/btf/vmlinux";
  struct stat sb;
  if (stat(btf_file, &sb) != 0)
    return throw_code(env, "ERR_NO_BTF",
                      "%s: %s: this kernel exposes no BTF type information (it needs CONFIG_DEBUG_INFO_BTF=y, "
                      "Linux 5.8 or later as most distributions ship it)", btf_file, strerror(errno));
  if (stat(path, &sb) != 0)
    return throw_code(env, "ERR_BPF_OBJECT", "%s: %s: the BPF object was not built (npm run build, with clang "
                      "and bpftool installed)", path, strerror(errno));

  libbpf_set_print(on_libbpf_print);
  log_clear();
  mw_ebpf *c = calloc(1, sizeof *c);
  if (!c) return throw_code(env, "ENOMEM", "ebpf: out of memory");
  c->env = env;
  c->gather_ns = (long)gather_us * 1000L;
  c->gather_ms = (gather_us + 999) / 1000; /* libuv's timers count milliseconds */
  c->quiet_ms = (quiet_us + 999) / 1000;
  c->quiet_fd = -1;
  char tail[700];

  int err = 0;
  /* The verifier gives up with EAGAIN when a signal arrives (a profiler's SIGPROF): try again. */
  for (int attempt = 0;; attempt++) {
  LIBBPF_OPTS(bpf_object_open_opts, oo, .btf_custom_path = btf_path[0] ? btf_path : NULL);
  c->obj = bpf_object__open_file(path, &oo);
  if (!c->obj) {
    int err = errno;
    free(c);
    log_tail(tail, sizeof tail);
    return throw_code(env, "ERR_BPF_OBJECT", "%s: cannot open the BPF object: %s [%s]", path, strerror(err), tail);
  }
  struct bpf_map *m, *rodata = NULL;
  bpf_object__for_each_map(m, c->obj) {
    const char *name = bpf_map__name(m);
    size_t l = strlen(name);
    if (l >= 7 && strcmp(name + l - 7, ".rodata") == 0) rodata = m;
    if (strcmp(name, "events") == 0) bpf_map__set_max_entries(m, ring);
  }
  struct mw_config *cfg_img = rodata ? rodata_var(c->obj, rodata, "cfg", sizeof cfg) : NULL;
  if (!cfg_img) {
    teardown(c);
    free(c);
    return throw_code(env, "ERR_BPF_OBJECT", "%s: the object lacks its cfg global (a stale build?)", path);
  }

  /* The RandomX program only where its tracepoint exists and it is wanted. */
  c->fpu = cfg.fpu ? "on" : "off";
  struct bpf_program *fpu_prog = bpf_object__find_program_by_name(c->obj, "mw_fpu");
  if (cfg.fpu) {
    struct btf *vbtf = btf_path[0] ? btf__parse(btf_path, NULL) : btf__load_vmlinux_btf();
    if (!vbtf || btf__find_by_name_kind(vbtf, "btf_trace_x86_fpu_regs_deactivated", BTF_KIND_TYPEDEF) < 0) {
      c->fpu = "missing";
      cfg.fpu = 0;
    }
    btf__free(vbtf);
  }
  if (fpu_prog && !cfg.fpu) bpf_program__set_autoload(fpu_prog, false);
  memcpy(cfg_img, &cfg, sizeof cfg);

  /* A profiler's SIGPROF (node --cpu-prof: every millisecond) interrupts the verifier, which then
     gives up with EAGAIN every time: hold it until the programs are in. */
  sigset_t prof, was;
  sigemptyset(&prof);
  sigaddset(&prof, SIGPROF);
  pthread_sigmask(SIG_BLOCK, &prof, &was);
  err = bpf_object__load(c->obj);
  pthread_sigmask(SIG_SETMASK, &was, NULL);
  if (err == -EAGAIN && attempt < 5) {
    teardown(c);
    log_clear();
    continue;
  }
  if (err) {
    err = -err;
    log_tail(tail, sizeof tail);
    teardown(c);
    free(c);
    if (err == EPERM || err == EACCES)
      return throw_code(env, err == EPERM ? "EPERM" : "EACCES",
                        "loading BPF programs needs root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN): %s [%s]",
                        strerror(err), tail);
    return throw_code(env, "ERR_BPF_LOAD", "the kernel refused the BPF programs: %s [%s]", strerror(err), tail);
  }
  break;
  }
  c->flags_fd = bpf_object__find_map_fd_by_name(c->obj, "sys_flags");
  c->stashed_fd = bpf_object__find_map_fd_by_name(c->obj, "sys_stashed");
  c->read_policy_fd = bpf_object__find_map_fd_by_name(c->obj, "read_policy");
  c->read_prefixes_fd = bpf_object__find_map_fd_by_name(c->obj, "read_prefixes");
  c->read_comms_fd = bpf_object__find_map_fd_by_name(c->obj, "read_comms");
  int desc_fd = bpf_object__find_map_fd_by_name(c->obj, "sys_desc");
  for (uint32_t nr = 0; desc_fd >= 0 && nr < 512; nr++) {
    if (desc[nr] && bpf_map_update_elem(desc_fd, &nr, &desc[nr], BPF_ANY) != 0) {
      desc_fd = -1;
      break;
    }
  }
  if (c->flags_fd < 0 || c->stashed_fd < 0 || desc_fd < 0 || c->read_policy_fd < 0 || c->read_prefixes_fd < 0 || c->read_comms_fd < 0 || set_flags(c, flags) != 0) {
    err = errno;
    teardown(c);
    free(c);
    return throw_code(env, "ERR_BPF_OBJECT", "%s: cannot fill the sys_flags, sys_stashed and sys_desc maps: %s (a stale build?)", path, strerror(err));
  }
  struct bpf_program *prog;
  bpf_object__for_each_program(prog, c->obj) {
    if (!bpf_program__autoload(prog)) continue;
    struct bpf_link *l = bpf_program__attach(prog);
    if (!l || c->nlinks >= 8) {
      err = errno;
      log_tail(tail, sizeof tail);
      const char *name = bpf_program__section_name(prog);
      teardown(c);
      free(c);
      return throw_code(env, err == EPERM ? "EPERM" : "ERR_BPF_ATTACH", "cannot attach %s: %s [%s]", name, strerror(err), tail);
    }
    c->links[c->nlinks++] = l;
  }
  c->counters_fd = bpf_object__find_map_fd_by_name(c->obj, "counters");
  int state_fd = bpf_object__find_map_fd_by_name(c->obj, "reader_state");
  if (state_fd >= 0) {
    void *m = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE, MAP_SHARED, state_fd, 0);
    if (m != MAP_FAILED) {
      c->reader = m;
      /* A quarter of the ring unread: a quiet record wakes the reader anyway, long before it fills. */
      c->reader->quiet_fill = ring / 4;
    }
  }
  c->quiet_fd = bpf_object__find_map_fd_by_name(c->obj, "quiet_execs");
  int ring_fd = bpf_object__find_map_fd_by_name(c->obj, "events");
  c->rb = ring_buffer__new(ring_fd, on_record, c, NULL);
  if (!c->rb) {
    err = errno;
    teardown(c);
    free(c);
    return throw_code(env, "ERR_BPF_ATTACH", "cannot set up the ring buffer reader: %s", strerror(err));
  }
  uv_loop_t *loop = NULL;
  mw_uv *u = calloc(1, sizeof *u);
  napi_create_string_utf8(env, "minewatch:ebpf", NAPI_AUTO_LENGTH, &resource);
  int uerr = !u || napi_get_uv_event_loop(env, &loop) != napi_ok ? -ENOMEM : 0;
  /* The ring's own fd (readable while it holds records); libbpf's epoll fd if libuv refuses it. */
  if (!uerr && (uerr = uv_poll_init(loop, &u->poll, ring_fd)) != 0) uerr = uv_poll_init(loop, &u->poll, ring_buffer__epoll_fd(c->rb));
  if (uerr || napi_create_reference(env, argv[2], 1, &c->callback) != napi_ok || napi_async_init(env, NULL, resource, &c->async) != napi_ok) {
    if (c->callback) napi_delete_reference(env, c->callback);
    if (u && !uerr) { /* the poll handle is the loop's now: freed when closed */
      u->open = 1;
      u->poll.data = u;
      uv_close((uv_handle_t *)&u->poll, on_uv_closed);
    } else free(u);
    teardown(c);
    free(c);
    return throw_code(env, "ERR_BPF_ATTACH", "ebpf: cannot set up the ring buffer reader: %s", uerr ? uv_strerror(uerr) : "node-api");
  }
  uv_timer_init(loop, &u->gather);
  uv_timer_init(loop, &u->idle);
  uv_unref((uv_handle_t *)&u->idle); /* the idle check alone keeps no process alive */
  u->poll.data = u->gather.data = u->idle.data = u;
  u->open = 3;
  u->c = c;
  c->uv = u;
  napi_add_async_cleanup_hook(env, cleanup_hook, c, &c->cleanup);
  napi_create_external(env, c, handle_finalize, NULL, &handle);
  share_batch(env, c);
  /* Records written before this see WAIT or not: either way the poll finds them (no JS call from
   * inside open()). */
  set_state(c, MW_READER_WAIT);
  sleep_until_woken(c);
  return handle;
}

static mw_ebpf *get_handle(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok || !data) {
    throw_code(env, "ERR_INVALID_ARG_TYPE", "expected a handle returned by open()");
    return NULL;
  }
  return data;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  mw_ebpf *c = get_handle(env, info);
  if (c) conn_close(c, NULL);
  return NULL;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  mw_ebpf *c = get_handle(env, info);
  if (!c) return NULL;
  uint64_t sums[MW_CNT_N] = {0};
  if (!c->closed && c->counters_fd >= 0) {
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu > 0) {
      uint64_t *vals = calloc(ncpu, sizeof *vals);
      for (uint32_t k = 0; vals && k < MW_CNT_N; k++) {
        if (bpf_map_lookup_elem(c->counters_fd, &k, vals) == 0)
          for (int i = 0; i < ncpu; i++) sums[k] += vals[i];
      }
      free(vals);
    }
  }
  napi_value o, v;
  napi_create_object(env, &o);
  napi_create_double(env, (double)sums[MW_CNT_EVENTS], &v);
  napi_set_named_property(env, o, "events", v);
  napi_create_double(env, (double)sums[MW_CNT_DROPS], &v);
  napi_set_named_property(env, o, "drops", v);
  napi_create_double(env, (double)c->queue_drops, &v);
  napi_set_named_property(env, o, "queueDrops", v);
  napi_create_string_utf8(env, c->fpu, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, o, "fpu", v);
  napi_create_double(env, (double)c->missed_wakeups, &v);
  napi_set_named_property(env, o, "missedWakeups", v);
  napi_create_double(env, (double)c->wakeups, &v);
  napi_set_named_property(env, o, "wakeups", v);
  napi_create_double(env, (double)c->quiet_sleeps, &v);
  napi_set_named_property(env, o, "quietSleeps", v);
  return o;
}

/* The handle and the number after it, for name(handle, n); NULL once thrown (`usage` says why). */
static mw_ebpf *handle_and_number(napi_env env, napi_callback_info info, const char *usage, int64_t *n) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  mw_ebpf *c = get_handle(env, info);
  if (!c) return NULL;
  if (argc < 2 || napi_get_value_int64(env, argv[1], n) != napi_ok) {
    throw_code(env, "ERR_INVALID_ARG_TYPE", "%s: expected a number", usage);
    return NULL;
  }
  return c;
}

/* setQuiet(handle, epoch): records may be quiet from now on (0: none is). */
static napi_value js_set_quiet(napi_env env, napi_callback_info info) {
  int64_t epoch = 0;
  mw_ebpf *c = handle_and_number(env, info, "setQuiet(handle, epoch)", &epoch);
  if (!c) return NULL;
  if (!c->reader || !c->quiet_ms || c->quiet_fd < 0 || epoch < 0 || epoch > UINT32_MAX) epoch = 0;
  if (c->reader) __atomic_store_n(&c->reader->quiet_epoch, (uint32_t)epoch, __ATOMIC_RELAXED);
  return NULL;
}

/* markQuiet(handle, sig) -> boolean: execs of this signature are quiet under the epoch in force. */
static napi_value js_mark_quiet(napi_env env, napi_callback_info info) {
  int64_t sig = 0;
  mw_ebpf *c = handle_and_number(env, info, "markQuiet(handle, sig)", &sig);
  if (!c) return NULL;
  uint64_t key = (uint64_t)sig;
  uint32_t epoch = quiet_epoch(c);
  napi_value res;
  napi_get_boolean(env, epoch && c->quiet_fd >= 0 && bpf_map_update_elem(c->quiet_fd, &key, &epoch, BPF_ANY) == 0, &res);
  return res;
}

/* setSysFlags(handle, Uint8Array(512)): what to report from now on (the rules changed). */
static napi_value js_set_sys_flags(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  void *data = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || napi_get_value_external(env, argv[0], &data) != napi_ok || !data)
    return throw_code(env, "ERR_INVALID_ARG_TYPE", "setSysFlags(handle, flags): expected a handle returned by open()");
  mw_ebpf *c = data;
  bool is_ta = false;
  napi_is_typedarray(env, argv[1], &is_ta);
  if (!is_ta) return throw_code(env, "ERR_INVALID_ARG_TYPE", "setSysFlags(handle, flags): flags must be a Uint8Array");
  napi_typedarray_type tt;
  size_t len;
  void *bytes;
  napi_get_typedarray_info(env, argv[1], &tt, &len, &bytes, NULL, NULL);
  uint8_t flags[512] = {0};
  if (tt == napi_uint8_array) memcpy(flags, bytes, len < sizeof flags ? len : sizeof flags);
  if (c->closed) return NULL;
  if (set_flags(c, flags) != 0) return throw_code(env, "ERR_BPF_MAP", "cannot update the sys_flags map: %s", strerror(errno));
  return NULL;
}

/* The LPM trie's key: the prefix's length in bits, then its bytes (minewatch.bpf.c, prefix_key). */
struct prefix_key {
  uint32_t prefixlen;
  uint8_t data[MW_PREFIX_MAX];
};

/* The comm set: the new names in, then the old ones not asked for again out. */
static napi_value set_comms(napi_env env, mw_ebpf *c, napi_value arr) {
  uint32_t count = 0, one = 1;
  napi_get_array_length(env, arr, &count);
  char(*keep)[16] = calloc(count ? count : 1, 16);
  if (!keep) return throw_code(env, "ENOMEM", "setReadPolicy: out of memory");
  for (uint32_t i = 0; i < count; i++) {
    napi_value v;
    size_t len = 0;
    char text[64];
    if (napi_get_element(env, arr, i, &v) != napi_ok || napi_get_value_string_utf8(env, v, text, sizeof text, &len) != napi_ok || len == 0 || len > 15) {
      free(keep);
      return throw_code(env, "ERR_INVALID_ARG_TYPE", "setReadPolicy: process name %u is not a string of 1 to 15 bytes", i);
    }
    memcpy(keep[i], text, len);
    if (bpf_map_update_elem(c->read_comms_fd, keep[i], &one, BPF_ANY) != 0) {
      free(keep);
      return throw_code(env, "ERR_BPF_MAP", "cannot update the read_comms map: %s", strerror(errno));
    }
  }
  char key[16], old[1024][16];
  size_t nold = 0;
  void *prev = NULL;
  while (nold < 1024 && bpf_map_get_next_key(c->read_comms_fd, prev, key) == 0) {
    memcpy(old[nold], key, 16);
    prev = old[nold++];
  }
  for (size_t i = 0; i < nold; i++) {
    int wanted = 0;
    for (uint32_t j = 0; j < count && !wanted; j++) wanted = memcmp(old[i], keep[j], 16) == 0;
    if (!wanted) bpf_map_delete_elem(c->read_comms_fd, old[i]);
  }
  free(keep);
  return NULL;
}

/* setReadPolicy(handle, mode, prefixes, comms): which opens for reading only to report from now
 * on. Each set takes its new entries before it loses its old ones, so a swap never lets through
 * less than either the old or the new rules ask for. */
static napi_value js_set_read_policy(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  void *data = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t mode = 0, count = 0;
  bool is_arr = false, is_arr2 = false;
  if (argc < 4 || napi_get_value_external(env, argv[0], &data) != napi_ok || !data || napi_get_value_uint32(env, argv[1], &mode) != napi_ok ||
      mode > MW_READ_PREFIX || napi_is_array(env, argv[2], &is_arr) != napi_ok || !is_arr || napi_is_array(env, argv[3], &is_arr2) != napi_ok || !is_arr2)
    return throw_code(env, "ERR_INVALID_ARG_TYPE", "setReadPolicy(handle, mode 0|1|2, prefixes: string[], comms: string[])");
  mw_ebpf *c = data;
  if (c->closed) return NULL;
  bool pending = false;
  set_comms(env, c, argv[3]);
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return NULL;
  napi_get_array_length(env, argv[2], &count);
  /* The new keys in first, then the old ones not asked for again out: no moment with neither. */
  struct prefix_key key;
  uint32_t one = 1;
  struct prefix_key *keep = calloc(count ? count : 1, sizeof *keep);
  if (!keep) return throw_code(env, "ENOMEM", "setReadPolicy: out of memory");
  for (uint32_t i = 0; i < count; i++) {
    napi_value v;
    size_t len = 0;
    char text[MW_PREFIX_MAX + 1];
    if (napi_get_element(env, argv[2], i, &v) != napi_ok || napi_get_value_string_utf8(env, v, text, sizeof text, &len) != napi_ok || len == 0) {
      free(keep);
      return throw_code(env, "ERR_INVALID_ARG_TYPE", "setReadPolicy: prefix %u is not a non-empty string", i);
    }
    memset(&keep[i], 0, sizeof keep[i]);
    memcpy(keep[i].data, text, len);
    keep[i].prefixlen = (uint32_t)len * 8;
    if (bpf_map_update_elem(c->read_prefixes_fd, &keep[i], &one, BPF_ANY) != 0) {
      free(keep);
      return throw_code(env, "ERR_BPF_MAP", "cannot update the read_prefixes map (prefix %u): %s", i, strerror(errno));
    }
  }
  /* Walk the old keys (into a list: deleting while walking restarts the walk) and drop the rest. */
  size_t nold = 0, cap = 64;
  struct prefix_key *old = malloc(cap * sizeof *old);
  void *prev = NULL;
  while (old && bpf_map_get_next_key(c->read_prefixes_fd, prev, &key) == 0) {
    if (nold == cap) {
      struct prefix_key *grown = realloc(old, (cap *= 2) * sizeof *old);
      if (!grown) break;
      old = grown;
    }
    old[nold] = key;
    prev = &old[nold++];
  }
  for (size_t i = 0; old && i < nold; i++) {
    int wanted = 0;
    for (uint32_t j = 0; j < count && !wanted; j++) wanted = memcmp(&old[i], &keep[j], sizeof key) == 0;
    if (!wanted) bpf_map_delete_elem(c->read_prefixes_fd, &old[i]);
  }
  free(old);
  free(keep);
  uint32_t zero = 0;
  if (bpf_map_update_elem(c->read_policy_fd, &zero, &mode, BPF_ANY) != 0)
    return throw_code(env, "ERR_BPF_MAP", "cannot update the read_policy map: %s", strerror(errno));
  return NULL;
}

/* ---- nudge: more switch-outs of a suspect's CPU ----
 * The RandomX program reads a thread's rounding mode when the thread leaves its CPU. A thread that
 * never sleeps, on a host with little else to run, leaves it about twice a second: too seldom to
 * judge it quickly. A thread of ours pinned to that CPU and waking there every intervalMs makes
 * the scheduler switch the busy thread out each time. Only for suspects (the JS side decides),
 * a few at once, each for a bounded number of wake-ups. */
#define MAX_NUDGERS 4
static atomic_int nudgers;

typedef struct {
  int cpu;
  int times;
  long interval_ns;
} nudge_args;

static void *nudge_thread(void *p) {
  nudge_args a = *(nudge_args *)p;
  free(p);
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(a.cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) == 0) {
    struct timespec t = {a.interval_ns / 1000000000L, a.interval_ns % 1000000000L};
    for (int i = 0; i < a.times; i++) nanosleep(&t, NULL);
  }
  atomic_fetch_sub(&nudgers, 1);
  return NULL;
}

static napi_value js_nudge(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t cpu = -1, times = 0, ms = 0;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &cpu) != napi_ok || napi_get_value_int32(env, argv[1], &times) != napi_ok ||
      napi_get_value_int32(env, argv[2], &ms) != napi_ok)
    return throw_code(env, "ERR_INVALID_ARG_TYPE", "nudge(cpu, times, intervalMs): expected three integers");
  napi_value res;
  bool ok = false;
  if (cpu >= 0 && cpu < CPU_SETSIZE && times > 0 && times <= 1000 && ms >= 1 && ms <= 10000) {
    if (atomic_fetch_add(&nudgers, 1) < MAX_NUDGERS) {
      nudge_args *a = malloc(sizeof *a);
      pthread_t th;
      pthread_attr_t attr;
      if (a) {
        *a = (nudge_args){cpu, times, (long)ms * 1000000L};
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        ok = pthread_create(&th, &attr, nudge_thread, a) == 0;
        pthread_attr_destroy(&attr);
        if (!ok) free(a);
      }
    }
    if (!ok) atomic_fetch_sub(&nudgers, 1);
  }
  napi_get_boolean(env, ok, &res);
  return res;
}

static napi_value init(napi_env env, napi_value exports) {
  /* libbpf reads the kernel's BTF (some 5 MB) into one buffer; freeing it raises glibc's dynamic
   * mmap threshold to that size, and the trim threshold to twice it, for good. From then on every
   * thread's malloc arena (V8's workers included) keeps up to 11 MB of freed memory it never gives
   * back: 10-16 MB of the agent's RSS (issue 16). A fixed threshold turns the raising off: large
   * buffers are mmapped and returned whole, and arenas are trimmed at glibc's default. */
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  napi_property_descriptor props[] = {
      {"setSysFlags", NULL, js_set_sys_flags, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setReadPolicy", NULL, js_set_read_policy, NULL, NULL, NULL, napi_enumerable, NULL},
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_enumerable, NULL},
      {"nudge", NULL, js_nudge, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setQuiet", NULL, js_set_quiet, NULL, NULL, NULL, napi_enumerable, NULL},
      {"markQuiet", NULL, js_mark_quiet, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
