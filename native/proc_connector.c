/*
 * minewatch_native: the Linux process events connector (NETLINK_CONNECTOR, CN_IDX_PROC) for Node,
 * written against plain Node-API so one binary serves every Node version (prebuildify --napi).
 *
 * JS API
 *   open(callback, { threads?: boolean, queueSize?: number, packed?: boolean }) -> handle
 *       Subscribes (PROC_CN_MCAST_LISTEN) and waits for the kernel's acknowledgement, so every
 *       reason it cannot work here is thrown now, with err.code set:
 *         EPERM / EACCES           not root (no CAP_NET_ADMIN); kernels since 6.6 let anyone listen
 *         EPROTONOSUPPORT          kernel built without CONFIG_CONNECTOR / CONFIG_PROC_EVENTS
 *         ERR_NOT_HOST_NETNS       this process is not in the host's network namespace
 *         ERR_NO_ACK               the kernel ignored us (not in the initial PID/user namespace)
 *       callback(events, error?) is called on the JS thread with a batch of events
 *       ({ kind, pid, tid, cpu, ts, ... }, ts a bigint of ns since the epoch); error is a
 *       string, given once, when the reader thread stops because of an unexpected failure.
 *       packed: events come as one Uint32Array per batch instead, 8 words per event (what, pid,
 *       tid, ppid, a, b, ts low, ts high; see packed_events), for a consumer that wants no
 *       object per event.
 *   close(handle)            unsubscribes, stops the reader thread, lets Node exit. Idempotent.
 *       readExecs (with packed): the reader thread reads /proc for each exec as it arrives
 *       (proc_exec_read.c); callback(events, error, reads, readAt) then gets, where a batch has
 *       any, the reads back to back in one Buffer, and a Uint32Array of two words per event: where
 *       its read starts in the Buffer and how long it is (0: none).
 *       holdUs: a batch waits up to this long (at most 100 ms) for more events before it is handed
 *       to JS (default 0: at once); the reader still takes every event (and reads every exec) as
 *       it arrives.
 *       socketBufferKb: the netlink socket's receive buffer in KiB (default 8192, at least 64):
 *       what the kernel holds while the reader is not reading; past it, ENOBUFS (kernelDrops).
 *       quietUs: how long a batch of quiet notices only may wait (at most 1 s; at least holdUs):
 *       forks, exits, and execs whose signature was marked quiet (exec_quiet.c). An exec's
 *       signature comes in its packed a and b words: 53 bits, bit 31 of b set when found quiet;
 *       bit 30 of b: the process was reaped before it could be read (nothing left in /proc).
 *   setQuiet(handle, epoch)  quiet execs on (a new epoch forgets every signature) or off (0, the
 *       start: every notice is loud until a first epoch is set)
 *   markQuiet(handle, sig) -> boolean   execs of this signature are quiet until the next epoch
 *   readExec(pid, loginuid?, status?) -> Buffer | null   that read, on the calling thread (tests, tools)
 *   setReadLoginuid(handle, on)  whether reads take /proc/PID/loginuid from now on (open's
 *       readLoginuid, default true)
 *   setReadStatus(handle, on)  whether reads take /proc/PID/status (vpid, capabilities) from now
 *       on, or only the ids from a stat of /proc/PID (open's readStatus, default true)
 *   stats(handle) -> { events, drops, kernelDrops, open, lazySocket, batches }
 *   drops(handle) -> drops + kernelDrops
 *       drops:       events dropped because JS did not keep up (bounded queue, never blocks)
 *       kernelDrops: ENOBUFS from recv: the socket buffer overflowed, one or more events lost
 *       lazySocket:  forks and exits come on a socket of their own, read without waking the
 *                    reader (see reader_main); false where the kernel would not filter
 *       batches:     batches handed to JS (each a wake-up of the JS thread)
 */
#define _GNU_SOURCE
#define NAPI_VERSION 6
#include <node_api.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __linux__
#include <fcntl.h>
#include <linux/cn_proc.h>
#include <linux/filter.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "exec_quiet.h"
#include "proc_exec_read.h"

/* Events per batch handed to JS; a burst (fork bomb, make -j) fills batches, a quiet host sends
 * one event per batch so latency stays at one wake-up. */
#define BATCH_MAX 256
/* Batches waiting for the JS thread before we start dropping (and counting) instead of blocking
 * the reader: a blocked reader would make the kernel drop silently. */
#define DEFAULT_QUEUE 256
/* recv() calls per wake-up before looking at the stop pipe again. */
#define DRAIN_MAX 128
/* How long open() waits for the kernel's acknowledgement of LISTEN. The ack is sent from within
 * our own sendto(), so it is there at once when it is coming at all. */
#define ACK_TIMEOUT_MS 1000
/* Receive buffer: bursts of thousands of forks must not overflow it while JS is busy. */
#define RCVBUF_BYTES (8 * 1024 * 1024)

typedef struct {
  uint32_t what;
  uint32_t cpu;
  int32_t pid, tid;   /* thread group id (the process id) and thread id */
  int32_t ppid, ptid; /* fork, exit (kernels >= 4.18), coredump: the parent's tgid and tid */
  uint32_t a, b;      /* uid: ruid/euid, gid: rgid/egid, exit: wait status / exit_signal */
  uint64_t ts;        /* ns since the epoch */
  char comm[16];
} mw_event;

typedef struct {
  size_t count;
  int packed;      /* hand the batch to JS as a Uint32Array (see PACKED_WORDS), not as objects */
  char error[160]; /* non-empty: the reader stopped for this reason */
  mw_exec_read *reads[BATCH_MAX]; /* per event: an exec's /proc files (readExecs), else NULL */
  mw_event ev[];
} mw_batch;

typedef struct mw_conn {
  napi_env env;
  napi_threadsafe_function tsfn;
  int sock;   /* every notice but fork and exit when `lazy` is open, else every notice */
  int lazy;   /* fork and exit notices (socket_filter), read without a wake-up of their own; -1: none */
  int wake[2];
  pthread_t thread;
  int closed;
  int threads;
  int packed;
  int read_execs;
  atomic_int read_flags; /* MW_READ_* (proc_exec_read.h): what else each exec's read takes */
  int64_t hold_ns; /* how long a batch may wait for more events before it goes to JS */
  int64_t quiet_ns; /* how long a batch of quiet notices only may wait (exec_quiet.c); >= hold_ns */
  mw_quiet_set quiet;
  atomic_uint_fast64_t events, drops, kernel_drops, batches;
} mw_conn;

static int64_t ts_ns(const struct timespec *t) { return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec; }

/* The kernel stamps events with ktime_get_ns() (CLOCK_MONOTONIC). REALTIME - MONOTONIC turns that
 * into epoch time; it is re-measured on every wake-up so a clock step or a suspend does not leave
 * a stale offset behind. Bracketing REALTIME between two MONOTONIC reads halves the error. */
static int64_t realtime_offset(void) {
  struct timespec m1, r, m2;
  clock_gettime(CLOCK_MONOTONIC, &m1);
  clock_gettime(CLOCK_REALTIME, &r);
  clock_gettime(CLOCK_MONOTONIC, &m2);
  return ts_ns(&r) - (ts_ns(&m1) + (ts_ns(&m2) - ts_ns(&m1)) / 2);
}

static mw_batch *batch_new(int packed) {
  mw_batch *b = malloc(sizeof(mw_batch) + BATCH_MAX * sizeof(mw_event));
  if (b) {
    b->count = 0;
    b->packed = packed;
    b->error[0] = '\0';
  }
  return b;
}

/* Forget the events of a batch (dropped, or the batch freed), with the /proc reads they hold. */
static void batch_clear(mw_batch *b) {
  for (size_t i = 0; i < b->count; i++) {
    mw_exec_read_free(b->reads[i]);
    b->reads[i] = NULL;
  }
  b->count = 0;
}

static void batch_free(mw_batch *b) {
  if (!b) return;
  batch_clear(b);
  free(b);
}

/* Read /proc for the execs among events [from, count) of the batch (readExecs), unless the
 * process's exit is already among the events after it: then there is nothing left to read (its
 * exe is gone, so the read would stop at the first image mark after six syscalls, and the JS
 * thread reads what a zombie still shows). The reader drains every datagram waiting before it
 * reads (reader_main), so an exit that came in the same wake-up as its exec is seen here. Only the
 * leader's exit (tid == pid) ends the process: with threads on, a thread's exit does not. */
/* An exec's b word: its process was reaped before it could be read (read_execs). */
#define MW_EXEC_REAPED 0x40000000u

static void read_execs(mw_conn *c, mw_batch *b, size_t from) {
  int flags = atomic_load_explicit(&c->read_flags, memory_order_relaxed);
  for (size_t i = from; i < b->count; i++) {
    if (b->ev[i].what != PROC_EVENT_EXEC) continue;
    int gone = 0;
    for (size_t j = i + 1; j < b->count && !gone; j++)
      gone = b->ev[j].what == PROC_EVENT_EXIT && b->ev[j].pid == b->ev[i].pid && b->ev[j].tid == b->ev[j].pid;
    int reaped = 0;
    if (!gone) b->reads[i] = mw_read_exec(b->ev[i].pid, flags, &reaped);
    else reaped = mw_proc_reaped(b->ev[i].pid);
    /* Nothing left for the JS thread to read either (a zombie it would still read). */
    if (reaped) b->ev[i].b |= MW_EXEC_REAPED;
  }
}

/* Sign the execs read among events [from, count) (exec_quiet.c): the signature goes to JS in the
 * exec's a and b words (53 bits; bit 31 of b: found quiet). Returns how many of the events are
 * loud, the ones that end a batch's quiet hold: any but a fork, an exit and an exec whose
 * signature is quiet. With quiet execs off (epoch 0) every event is loud, as before them. */
static size_t sign_execs(mw_conn *c, mw_batch *b, size_t from) {
  int on = mw_quiet_epoch(&c->quiet) != 0;
  size_t loud = 0;
  for (size_t i = from; i < b->count; i++) {
    mw_event *e = &b->ev[i];
    if (!on) {
      loud++;
    } else if (e->what == PROC_EVENT_EXEC) {
      uint64_t sig = b->reads[i] ? mw_exec_signature(b->reads[i]) : 0;
      int quiet = mw_quiet_has(&c->quiet, sig);
      e->a = (uint32_t)sig;
      e->b = (e->b & MW_EXEC_REAPED) | (uint32_t)(sig >> 32) | (quiet ? 0x80000000u : 0);
      if (!quiet) loud++;
    } else if (e->what != PROC_EVENT_FORK && e->what != PROC_EVENT_EXIT) {
      loud++;
    }
  }
  return loud;
}

/* ---- messages to and from the kernel ---- */

static int send_mcast_op(int sock, enum proc_cn_mcast_op op, uint32_t seq) {
  struct {
    struct nlmsghdr nl;
    struct cn_msg cn;
    enum proc_cn_mcast_op op;
  } __attribute__((packed)) msg;
  struct sockaddr_nl to = {.nl_family = AF_NETLINK, .nl_pid = 0 /* the kernel */};
  memset(&msg, 0, sizeof msg);
  msg.nl.nlmsg_len = sizeof msg;
  msg.nl.nlmsg_type = NLMSG_DONE;
  msg.nl.nlmsg_pid = 0; /* filled in by the kernel from our socket */
  msg.cn.id.idx = CN_IDX_PROC;
  msg.cn.id.val = CN_VAL_PROC;
  msg.cn.seq = seq;
  msg.cn.ack = seq; /* the kernel answers with ack + 1 */
  msg.cn.len = sizeof(enum proc_cn_mcast_op);
  msg.op = op;
  for (;;) {
    ssize_t n = sendto(sock, &msg, sizeof msg, 0, (struct sockaddr *)&to, sizeof to);
    if (n >= 0) return 0;
    if (errno != EINTR) return errno;
  }
}

/* Decode one proc_event into the batch. Returns 1 when it was the ack to `ack_seq` (its error in
 * *ack_err), 0 otherwise. Short messages from older kernels are zero-filled, never over-read. */
static int decode(mw_conn *c, const struct cn_msg *cn, size_t avail, int64_t offset, mw_batch *b,
                  uint32_t ack_seq, int *ack_err) {
  struct proc_event ev;
  size_t len = cn->len;
  if (cn->id.idx != CN_IDX_PROC || cn->id.val != CN_VAL_PROC) return 0;
  if (len > avail) len = avail;
  if (len < offsetof(struct proc_event, event_data)) return 0;
  memset(&ev, 0, sizeof ev);
  memcpy(&ev, cn->data, len < sizeof ev ? len : sizeof ev);

  if (ev.what == PROC_EVENT_NONE) {
    /* Match on ack only: the kernel answers with our ack + 1 but overwrites seq with its own
     * per-CPU counter (send_msg in cn_proc.c). Other listeners' acks carry their own nonces. */
    if (ack_err && cn->ack == ack_seq + 1) {
      *ack_err = (int)ev.event_data.ack.err;
      return 1;
    }
    return 0;
  }
  if (!b || b->count >= BATCH_MAX) {
    /* Only when one datagram carries more events than the batch has room for. */
    atomic_fetch_add(&c->drops, 1);
    return 0;
  }

  mw_event *e = &b->ev[b->count];
  memset(e, 0, sizeof *e);
  b->reads[b->count] = NULL;
  e->what = ev.what;
  e->cpu = ev.cpu;
  e->ts = (uint64_t)((int64_t)ev.timestamp_ns + offset);
  switch (ev.what) {
  case PROC_EVENT_FORK:
    e->pid = ev.event_data.fork.child_tgid;
    e->tid = ev.event_data.fork.child_pid;
    e->ppid = ev.event_data.fork.parent_tgid;
    e->ptid = ev.event_data.fork.parent_pid;
    break;
  case PROC_EVENT_EXEC:
    e->pid = ev.event_data.exec.process_tgid;
    e->tid = ev.event_data.exec.process_pid;
    break;
  case PROC_EVENT_UID:
  case PROC_EVENT_GID:
    e->pid = ev.event_data.id.process_tgid;
    e->tid = ev.event_data.id.process_pid;
    e->a = ev.event_data.id.r.ruid;
    e->b = ev.event_data.id.e.euid;
    break;
  case PROC_EVENT_COMM:
    e->pid = ev.event_data.comm.process_tgid;
    e->tid = ev.event_data.comm.process_pid;
    memcpy(e->comm, ev.event_data.comm.comm, sizeof e->comm);
    e->comm[sizeof e->comm - 1] = '\0';
    break;
  case PROC_EVENT_COREDUMP:
    e->pid = ev.event_data.coredump.process_tgid;
    e->tid = ev.event_data.coredump.process_pid;
    e->ppid = ev.event_data.coredump.parent_tgid;
    e->ptid = ev.event_data.coredump.parent_pid;
    break;
  case PROC_EVENT_EXIT:
    e->pid = ev.event_data.exit.process_tgid;
    e->tid = ev.event_data.exit.process_pid;
    e->a = ev.event_data.exit.exit_code; /* the wait status: code << 8 | signal | 0x80 core */
    e->b = ev.event_data.exit.exit_signal;
    e->ppid = ev.event_data.exit.parent_tgid;
    e->ptid = ev.event_data.exit.parent_pid;
    break;
  default:
    return 0; /* sid, ptrace: not reported */
  }
  /* A thread's own fork/exit/uid/comm is noise for a process view (a miner starts one thread
   * per core); exec always reports the thread group leader. */
  if (!c->threads && e->pid != e->tid) return 0;
  b->count++;
  atomic_fetch_add(&c->events, 1);
  return 0;
}

/* Walk the netlink messages of one datagram. */
static int parse_datagram(mw_conn *c, const char *buf, size_t n, int64_t offset, mw_batch *b,
                          uint32_t ack_seq, int *ack_err) {
  int got_ack = 0;
  for (const struct nlmsghdr *nl = (const struct nlmsghdr *)buf; NLMSG_OK(nl, n); nl = NLMSG_NEXT(nl, n)) {
    if (nl->nlmsg_type == NLMSG_NOOP || nl->nlmsg_type == NLMSG_ERROR || nl->nlmsg_type == NLMSG_OVERRUN) continue;
    if (nl->nlmsg_len < NLMSG_LENGTH(sizeof(struct cn_msg))) continue;
    const struct cn_msg *cn = NLMSG_DATA(nl);
    size_t avail = nl->nlmsg_len - NLMSG_LENGTH(sizeof(struct cn_msg));
    if (decode(c, cn, avail, offset, b, ack_seq, ack_err)) got_ack = 1;
  }
  return got_ack;
}

/* Receive one datagram without blocking. Returns its size, 0 when it did not come from the kernel
 * (anyone may unicast to our port id, and forged events must not count), -EAGAIN when there is
 * nothing, or another -errno. */
static ssize_t recv_one(int sock, char *buf, size_t size) {
  struct sockaddr_nl from;
  socklen_t fl = sizeof from;
  for (;;) {
    ssize_t n = recvfrom(sock, buf, size, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
    if (n >= 0) return (fl >= sizeof from && from.nl_pid == 0) ? n : 0;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return -EAGAIN;
    return -errno;
  }
}

/* Datagrams taken per recvmmsg(): a wake-up with one waiting costs one call, not a recv and the
 * recv that says EAGAIN; a burst costs one call per RECV_BURST. */
#define RECV_BURST 8

typedef struct {
  struct mmsghdr mm[RECV_BURST];
  struct iovec iov[RECV_BURST];
  struct sockaddr_nl from[RECV_BURST];
  char *bufs; /* RECV_BURST buffers of CONNECTOR_MAX_MSG_SIZE */
} mw_recv;

/* Take up to RECV_BURST waiting datagrams without blocking. Returns how many (their lengths in
 * mm[i].msg_len; a length of 0 for one not from the kernel: a forged datagram, dropped), or
 * -errno (-EAGAIN: none waiting). */
static int recv_burst(int sock, mw_recv *r) {
  for (int i = 0; i < RECV_BURST; i++) {
    r->iov[i].iov_base = r->bufs + (size_t)i * CONNECTOR_MAX_MSG_SIZE;
    r->iov[i].iov_len = CONNECTOR_MAX_MSG_SIZE;
    memset(&r->mm[i].msg_hdr, 0, sizeof r->mm[i].msg_hdr);
    r->mm[i].msg_hdr.msg_iov = &r->iov[i];
    r->mm[i].msg_hdr.msg_iovlen = 1;
    r->mm[i].msg_hdr.msg_name = &r->from[i];
    r->mm[i].msg_hdr.msg_namelen = sizeof r->from[i];
  }
  for (;;) {
    int n = recvmmsg(sock, r->mm, RECV_BURST, MSG_DONTWAIT, NULL);
    if (n >= 0) {
      for (int i = 0; i < n; i++)
        if (r->mm[i].msg_hdr.msg_namelen < sizeof r->from[i] || r->from[i].nl_pid != 0) r->mm[i].msg_len = 0;
      return n;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return -EAGAIN;
    return -errno;
  }
}

/* ---- the reader thread ---- */

/* Offer the batch to JS without blocking. On a full queue a partial batch is kept to retry (it
 * keeps filling meanwhile); a full one is dropped and counted. Returns -1 once the tsfn closes. */
static int flush(mw_conn *c, mw_batch **bp) {
  mw_batch *b = *bp;
  if (!b || (b->count == 0 && b->error[0] == '\0')) return 0;
  napi_status st = napi_call_threadsafe_function(c->tsfn, b, napi_tsfn_nonblocking);
  if (st == napi_ok) {
    *bp = NULL;
    atomic_fetch_add(&c->batches, 1);
    return 0;
  }
  if (st == napi_queue_full) {
    if (b->count >= BATCH_MAX) {
      atomic_fetch_add(&c->drops, b->count);
      batch_clear(b);
    }
    return 0;
  }
  return -1;
}

static int64_t mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return ts_ns(&t);
}

/* How long fork and exit notices may wait on the lazy socket while execs keep the reader busy:
 * each exec's wake-up takes them too, so this bounds only their delay after the last exec. */
#define LAZY_NS (10 * 1000000LL)

/* Take the datagrams waiting on `sock` into the batch without blocking, while it holds fewer than
 * `limit` events and room for a whole burst (the caller makes the room: a wake-up's events stay
 * in one batch so they can be put in order). Returns the events added, or -1 with `error` set;
 * *more (when asked for) says the limit came before the socket ran dry. */
static int drain_socket(mw_conn *c, int sock, mw_recv *rx, mw_batch *b, size_t limit, int64_t offset, int *more,
                        char *error, size_t error_size) {
  size_t before = b->count;
  int stopped = 0;
  for (int calls = 0; calls < DRAIN_MAX; calls++) {
    if (b->count + RECV_BURST > limit) {
      stopped = 1;
      break;
    }
    int m = recv_burst(sock, rx);
    if (m == -ENOBUFS) {
      /* The socket buffer overflowed: the kernel dropped one or more events. */
      atomic_fetch_add(&c->kernel_drops, 1);
      continue;
    }
    if (m == -EAGAIN) break;
    if (m < 0) {
      snprintf(error, error_size, "proc connector: recv failed: %s", strerror(-m));
      return -1;
    }
    for (int j = 0; j < m; j++) {
      if (rx->mm[j].msg_len == 0) continue; /* a forged datagram: dropped */
      parse_datagram(c, rx->bufs + (size_t)j * CONNECTOR_MAX_MSG_SIZE, rx->mm[j].msg_len, offset, b, 0, NULL);
    }
    /* Fewer than asked for: drained (no recv of its own to say EAGAIN). */
    if (m < RECV_BURST) break;
    if (calls == DRAIN_MAX - 1) stopped = 1;
  }
  if (more) *more = stopped;
  return (int)(b->count - before);
}

/* Put events [from, count) of the batch in the kernel's order (their timestamps): the two sockets
 * are read one after the other, so a fork read from the lazy socket may be older than the exec
 * before it in the batch. Stable (equal stamps keep their order); a wake-up's few events. Run
 * before read_execs, while reads[] are all NULL. */
static void order_events(mw_batch *b, size_t from) {
  for (size_t i = from + 1; i < b->count; i++) {
    if (b->ev[i].ts >= b->ev[i - 1].ts) continue;
    mw_event e = b->ev[i];
    size_t j = i;
    while (j > from && b->ev[j - 1].ts > e.ts) {
      b->ev[j] = b->ev[j - 1];
      j--;
    }
    b->ev[j] = e;
  }
}

/* Flush the batch when its oldest loud event has waited hold_ns (or it is half full), not after
 * every wake-up: at a thousand execs a second each exec is three notices, and each batch a wake-up
 * of the JS thread. The reader itself wakes for every exec, so its /proc read (readExecs) is made
 * the moment it arrives; only the hand-over waits. A batch of quiet notices only (forks, exits,
 * execs whose signature the agent marked quiet: exec_quiet.c) waits quiet_ns from its oldest event
 * instead, and the first loud one to join it cuts that to hold_ns from its own arrival.
 *
 * Fork and exit notices come on the lazy socket (when open): they need no read of /proc, so they
 * wake nobody while execs come (each exec's wake-up takes them first, in the kernel's order), and
 * wait at most LAZY_NS after the last one. On a quiet host the lazy socket is in the poll set
 * (armed), so a fork or exit with no exec around is taken at once. One wake-up per exec instead of
 * three (fork, exec, exit) under an exec storm. */
static void *reader_main(void *arg) {
  mw_conn *c = arg;
  mw_recv rx;
  mw_batch *b = NULL;
  char error[160] = "";
  rx.bufs = malloc((size_t)RECV_BURST * CONNECTOR_MAX_MSG_SIZE);
  int64_t first = 0;    /* when the oldest event of the batch arrived (CLOCK_MONOTONIC); 0: none */
  int64_t first_loud = 0; /* when its oldest loud event arrived (sign_execs); 0: none, a quiet hold */
  int64_t retry_at = 0; /* a full queue held the batch back: offer it again no sooner than this */
  int lazy_armed = 1;   /* the lazy socket is polled: its next datagram wakes the reader */
  int64_t lazy_due = 0; /* not armed: when to take its datagrams at the latest */

  if (!rx.bufs) snprintf(error, sizeof error, "proc connector: out of memory");
  while (rx.bufs) {
    struct pollfd p[3] = {{.fd = c->sock, .events = POLLIN}, {.fd = c->wake[0], .events = POLLIN}, {.fd = c->lazy, .events = POLLIN}};
    int lazy_polled = c->lazy >= 0 && lazy_armed;
    int64_t due = INT64_MAX;
    if (b && b->count) {
      due = first_loud ? first_loud + c->hold_ns : first + c->quiet_ns;
      if (retry_at > due) due = retry_at;
    }
    if (c->lazy >= 0 && !lazy_armed && lazy_due < due) due = lazy_due;
    struct timespec wait, *tp = NULL;
    if (due != INT64_MAX) {
      int64_t d = due - mono_ns();
      if (d < 0) d = 0;
      wait.tv_sec = d / 1000000000LL;
      wait.tv_nsec = d % 1000000000LL;
      tp = &wait;
    }
    int r = ppoll(p, lazy_polled ? 3 : 2, tp, NULL);
    if (r < 0) {
      if (errno == EINTR) continue;
      snprintf(error, sizeof error, "proc connector: poll failed: %s", strerror(errno));
      break;
    }
    if (p[1].revents) break; /* close() asked us to stop */

    int64_t now = mono_ns();
    int urgent = p[0].revents != 0;
    int lazy = c->lazy >= 0 && (urgent || (lazy_polled && p[2].revents) || (!lazy_armed && now >= lazy_due));
    if (urgent || lazy) {
      int64_t offset = realtime_offset();
      /* Room for this wake-up's events in one batch, so they can be ordered together: a batch
       * past half full goes first; a nearly full one the queue cannot take yet is dropped
       * (counted), as a full one always was. */
      if (b && b->count > BATCH_MAX / 2) {
        if (flush(c, &b) < 0) goto out;
        if (b && b->count > BATCH_MAX - 4 * RECV_BURST) {
          atomic_fetch_add(&c->drops, b->count);
          batch_clear(b);
        }
        if (!b || b->count == 0) first = first_loud = 0;
      }
      if (!b && !(b = batch_new(c->packed))) {
        snprintf(error, sizeof error, "proc connector: out of memory");
        break;
      }
      size_t unread = b->count;
      int more_lazy = 0, got_urgent = 0;
      /* Half the room for each socket: the lazy one's forks are older than the execs they precede. */
      size_t half = b->count + (BATCH_MAX - b->count) / 2;
      if (urgent && (got_urgent = drain_socket(c, c->sock, &rx, b, c->lazy >= 0 ? half : BATCH_MAX, offset, NULL, error,
                                               sizeof error)) < 0)
        goto out;
      if (lazy && drain_socket(c, c->lazy, &rx, b, BATCH_MAX, offset, &more_lazy, error, sizeof error) < 0) goto out;
      order_events(b, unread);
      if (b->count > unread && first == 0) first = now;
      /* Execs keep the lazy socket unpolled (their wake-ups take it); once a look at it comes
       * without one, it is polled again. */
      if (lazy) {
        if (got_urgent > 0 || more_lazy) {
          lazy_due = more_lazy ? 0 : now + LAZY_NS;
          lazy_armed = 0;
        } else {
          lazy_armed = 1;
        }
      }
      if (c->read_execs) read_execs(c, b, unread);
      if (sign_execs(c, b, unread) > 0 && first_loud == 0) first_loud = now;
    }
    if (!b || b->count == 0) continue;
    int held = first_loud ? now - first_loud < c->hold_ns : now - first < c->quiet_ns;
    if (now < retry_at || (held && b->count < BATCH_MAX / 2)) continue;
    if (flush(c, &b) < 0) goto out;
    if (b && b->count) {
      retry_at = now + 5000000LL; /* the queue is full: 5 ms */
    } else {
      first = first_loud = 0;
      retry_at = 0;
    }
  }
out:
  /* Stopping: a batch still held (holdUs) goes out like any other, not counted as dropped. */
  if (!error[0] && b && b->count && napi_call_threadsafe_function(c->tsfn, b, napi_tsfn_nonblocking) == napi_ok) b = NULL;
  if (error[0]) {
    if (!b) b = batch_new(c->packed);
    if (b) {
      snprintf(b->error, sizeof b->error, "%s", error);
      if (napi_call_threadsafe_function(c->tsfn, b, napi_tsfn_nonblocking) == napi_ok) b = NULL;
    }
  }
  if (b) {
    atomic_fetch_add(&c->drops, b->count);
    batch_free(b);
  }
  free(rx.bufs);
  return NULL;
}

/* ---- the JS side ---- */

static const char *kind_name(uint32_t what) {
  switch (what) {
  case PROC_EVENT_FORK: return "fork";
  case PROC_EVENT_EXEC: return "exec";
  case PROC_EVENT_UID: return "uid";
  case PROC_EVENT_GID: return "gid";
  case PROC_EVENT_COMM: return "comm";
  case PROC_EVENT_COREDUMP: return "coredump";
  case PROC_EVENT_EXIT: return "exit";
  default: return "other";
  }
}

static napi_value event_object(napi_env env, const mw_event *e) {
  napi_value o, v;
  napi_create_object(env, &o);
#define SET(name, make) do { make; napi_set_named_property(env, o, name, v); } while (0)
  SET("kind", napi_create_string_latin1(env, kind_name(e->what), NAPI_AUTO_LENGTH, &v));
  SET("pid", napi_create_int32(env, e->pid, &v));
  SET("tid", napi_create_int32(env, e->tid, &v));
  SET("cpu", napi_create_uint32(env, e->cpu, &v));
  SET("ts", napi_create_bigint_uint64(env, e->ts, &v));
  switch (e->what) {
  case PROC_EVENT_FORK:
  case PROC_EVENT_COREDUMP:
    SET("ppid", napi_create_int32(env, e->ppid, &v));
    SET("ptid", napi_create_int32(env, e->ptid, &v));
    break;
  case PROC_EVENT_EXIT:
    SET("status", napi_create_uint32(env, e->a, &v));
    SET("exitSignal", napi_create_uint32(env, e->b, &v));
    if (e->ppid) {
      SET("ppid", napi_create_int32(env, e->ppid, &v));
      SET("ptid", napi_create_int32(env, e->ptid, &v));
    }
    break;
  case PROC_EVENT_UID:
    SET("ruid", napi_create_uint32(env, e->a, &v));
    SET("euid", napi_create_uint32(env, e->b, &v));
    break;
  case PROC_EVENT_GID:
    SET("rgid", napi_create_uint32(env, e->a, &v));
    SET("egid", napi_create_uint32(env, e->b, &v));
    break;
  case PROC_EVENT_COMM:
    SET("comm", napi_create_string_latin1(env, e->comm, NAPI_AUTO_LENGTH, &v));
    break;
  }
#undef SET
  return o;
}

/* A batch as one Uint32Array of PACKED_WORDS words per event: what, pid, tid, ppid, a, b, ts low,
 * ts high (the fields ProcNotice carries; a and b as in mw_event). One allocation per batch
 * instead of an object and six to eight named properties per event, each property a lookup of its
 * name in V8's string table: most of what an event cost the JS thread (issue 16). */
#define PACKED_WORDS 8
static napi_value packed_events(napi_env env, const mw_batch *b) {
  napi_value ab, arr;
  void *mem = NULL;
  size_t words = b->count * PACKED_WORDS;
  if (napi_create_arraybuffer(env, words * 4, &mem, &ab) != napi_ok) return NULL;
  uint32_t *w = mem;
  for (size_t i = 0; i < b->count; i++, w += PACKED_WORDS) {
    const mw_event *e = &b->ev[i];
    w[0] = e->what;
    w[1] = (uint32_t)e->pid;
    w[2] = (uint32_t)e->tid;
    w[3] = (uint32_t)e->ppid;
    w[4] = e->a;
    w[5] = e->b;
    w[6] = (uint32_t)(e->ts & 0xffffffffu);
    w[7] = (uint32_t)(e->ts >> 32);
  }
  if (napi_create_typedarray(env, napi_uint32_array, words, ab, 0, &arr) != napi_ok) return NULL;
  return arr;
}

/* The batch's exec reads in one Buffer, each 8-aligned, and where each event's is (readAt: start
 * and length per event, length 0 for none); 0 when the batch has none. One Buffer per batch, not
 * one per exec: each Buffer is a backing store and two objects on the JS heap, and its bytes
 * count as external memory, which V8 answers with collections (issue 16). */
static int exec_reads(napi_env env, const mw_batch *b, napi_value *reads, napi_value *read_at) {
  size_t total = 0, i;
  for (i = 0; i < b->count; i++)
    if (b->reads[i]) total += (b->reads[i]->len + 7) & ~(size_t)7;
  if (total == 0) return 0;
  void *data = NULL, *at_mem = NULL;
  napi_value ab, pending;
  if (napi_create_buffer(env, total, &data, reads) != napi_ok || napi_create_arraybuffer(env, b->count * 8, &at_mem, &ab) != napi_ok) {
    /* Out of memory: the events still go, without their reads (the table reads /proc itself). A
     * pending exception would make the callback's call fail and lose the whole batch. */
    napi_get_and_clear_last_exception(env, &pending);
    return 0;
  }
  uint32_t *at = at_mem;
  size_t o = 0;
  for (i = 0; i < b->count; i++) {
    const mw_exec_read *r = b->reads[i];
    at[2 * i] = (uint32_t)o;
    at[2 * i + 1] = r ? (uint32_t)r->len : 0;
    if (!r) continue;
    memcpy((char *)data + o, r->data, r->len);
    memset((char *)data + o + r->len, 0, ((r->len + 7) & ~(size_t)7) - r->len);
    o += (r->len + 7) & ~(size_t)7;
  }
  if (napi_create_typedarray(env, napi_uint32_array, b->count * 2, ab, 0, read_at) == napi_ok) return 1;
  napi_get_and_clear_last_exception(env, &pending);
  return 0;
}

/* Runs on the JS thread. env is NULL when the tsfn is being torn down with batches still queued:
 * then only free them. It never touches the mw_conn, which may already be gone. */
static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)context;
  mw_batch *b = data;
  if (env && js_cb) {
    napi_value arr, argv[4], undef;
    size_t argc = 1;
    napi_value reads = NULL, read_at = NULL;
    if (b->packed) {
      arr = packed_events(env, b);
      if (!exec_reads(env, b, &reads, &read_at)) reads = NULL;
    } else {
      napi_create_array_with_length(env, b->count, &arr);
      for (size_t i = 0; i < b->count; i++) napi_set_element(env, arr, (uint32_t)i, event_object(env, &b->ev[i]));
    }
    argv[0] = arr;
    napi_get_undefined(env, &undef);
    if (b->error[0]) {
      napi_create_string_utf8(env, b->error, NAPI_AUTO_LENGTH, &argv[1]);
      argc = 2;
    }
    if (reads) {
      if (argc < 2) argv[1] = undef;
      argv[2] = reads;
      argv[3] = read_at;
      argc = 4;
    }
    napi_call_function(env, undef, js_cb, argc, argv, NULL);
  }
  batch_free(b);
}

static void cleanup_hook(void *arg);

/* Stop the reader, unsubscribe, release the tsfn so Node can exit. Safe to call twice. */
static void conn_close(mw_conn *c, int from_cleanup_hook) {
  if (c->closed) return;
  c->closed = 1;
  ssize_t w;
  do w = write(c->wake[1], "x", 1); while (w < 0 && errno == EINTR);
  pthread_join(c->thread, NULL);
  /* Tell the kernel one listener fewer, so it stops building events once nobody listens. */
  send_mcast_op(c->sock, PROC_CN_MCAST_IGNORE, 0);
  close(c->sock);
  if (c->lazy >= 0) {
    send_mcast_op(c->lazy, PROC_CN_MCAST_IGNORE, 0);
    close(c->lazy);
  }
  close(c->wake[0]);
  close(c->wake[1]);
  /* release (not abort): batches already queued still reach JS, then the tsfn finalizes. */
  napi_release_threadsafe_function(c->tsfn, napi_tsfn_release);
  if (!from_cleanup_hook) napi_remove_env_cleanup_hook(c->env, cleanup_hook, c);
}

/* The environment is going away (process exit, worker termination) with the connector open:
 * join the thread before the module's code is unloaded under it. */
static void cleanup_hook(void *arg) { conn_close(arg, 1); }

static void handle_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  mw_conn *c = data;
  conn_close(c, 0);
  mw_quiet_destroy(&c->quiet);
  free(c);
}

static napi_value throw_code(napi_env env, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static napi_value throw_code(napi_env env, const char *code, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  napi_throw_error(env, code, msg);
  return NULL;
}

static const char *errno_code(int err) {
  switch (err) {
  case EPERM: return "EPERM";
  case EACCES: return "EACCES";
  case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
  case EAFNOSUPPORT: return "EAFNOSUPPORT";
  case ECONNREFUSED: return "ECONNREFUSED";
  case EMFILE: return "EMFILE";
  case ENFILE: return "ENFILE";
  case ENOMEM: return "ENOMEM";
  default: return "ERR_PROC_CONNECTOR";
  }
}

static napi_value throw_errno(napi_env env, const char *what, int err) {
  if (err == EPERM || err == EACCES)
    return throw_code(env, errno_code(err),
                      "%s: %s: the proc connector needs root (CAP_NET_ADMIN in the host's user namespace)",
                      what, strerror(err));
  if (err == EPROTONOSUPPORT || err == EAFNOSUPPORT)
    return throw_code(env, errno_code(err),
                      "%s: %s: this kernel has no process events connector (CONFIG_CONNECTOR and CONFIG_PROC_EVENTS)",
                      what, strerror(err));
  if (err == ECONNREFUSED) {
    /* The connector's kernel socket exists in the initial network namespace only: from any other
     * one the kernel refuses the LISTEN message (this is how it shows when /proc/1 is unreadable
     * and other_netns() could not tell beforehand). */
    char ns[64] = "";
    ssize_t n = readlink("/proc/self/ns/net", ns, sizeof ns - 1);
    ns[n > 0 ? n : 0] = '\0';
    return throw_code(env, "ERR_NOT_HOST_NETNS",
                      "%s: %s: the proc connector answers only in the host's network namespace, and this "
                      "process is in %s", what, strerror(err), ns[0] ? ns : "another one");
  }
  return throw_code(env, errno_code(err), "%s: %s", what, strerror(err));
}

/* The connector's kernel socket lives in the initial network namespace only: elsewhere a socket
 * opens and binds fine, and then nothing ever arrives. Compare our netns with pid 1's. Returns 1
 * (and the two inodes) when they differ; 0 when equal or when it cannot tell. */
static int other_netns(unsigned long *ours, unsigned long *host) {
  struct stat a, b;
  if (stat("/proc/self/ns/net", &a) != 0 || stat("/proc/1/ns/net", &b) != 0) return 0;
  *ours = (unsigned long)a.st_ino;
  *host = (unsigned long)b.st_ino;
  return a.st_ino != b.st_ino || a.st_dev != b.st_dev;
}

static int get_bool(napi_env env, napi_value obj, const char *name, int dflt) {
  bool has = false, v = false;
  napi_value val;
  napi_valuetype t;
  if (napi_has_named_property(env, obj, name, &has) != napi_ok || !has) return dflt;
  napi_get_named_property(env, obj, name, &val);
  napi_typeof(env, val, &t);
  if (t != napi_boolean) return dflt;
  napi_get_value_bool(env, val, &v);
  return v;
}

static uint32_t get_uint(napi_env env, napi_value obj, const char *name, uint32_t dflt) {
  bool has = false;
  uint32_t v = dflt;
  napi_value val;
  napi_valuetype t;
  if (napi_has_named_property(env, obj, name, &has) != napi_ok || !has) return dflt;
  napi_get_named_property(env, obj, name, &val);
  napi_typeof(env, val, &t);
  if (t != napi_number || napi_get_value_uint32(env, val, &v) != napi_ok || v == 0) return dflt;
  return v;
}

/* Subscribe `sock` and wait for the kernel's ack. Events that arrive first are kept in *early. */
static napi_value subscribe(napi_env env, mw_conn *c, int sock, mw_batch *early) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  /* A nonce to recognise our own ack among those of other listeners (acks are multicast). */
  uint32_t seq = ((uint32_t)getpid() * 2654435761u) ^ (uint32_t)t.tv_nsec ^ (uint32_t)(uintptr_t)c;
  if (seq == UINT32_MAX || seq == 0) seq = 1;
  int err = send_mcast_op(sock, PROC_CN_MCAST_LISTEN, seq);
  if (err) return throw_errno(env, "proc connector: PROC_CN_MCAST_LISTEN", err);

  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  char *buf = malloc(CONNECTOR_MAX_MSG_SIZE);
  if (!buf) return throw_code(env, "ENOMEM", "proc connector: out of memory");
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    int left = ACK_TIMEOUT_MS - (int)((ts_ns(&now) - ts_ns(&start)) / 1000000);
    struct pollfd p = {.fd = sock, .events = POLLIN};
    int r = left > 0 ? poll(&p, 1, left) : 0;
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      free(buf);
      return throw_code(env, "ERR_NO_ACK",
                        "proc connector: the kernel did not answer PROC_CN_MCAST_LISTEN within %d ms: it answers "
                        "only processes in the host's PID and user namespaces (run on the host, or in a container "
                        "with hostPID and hostNetwork)", ACK_TIMEOUT_MS);
    }
    ssize_t n = recv_one(sock, buf, CONNECTOR_MAX_MSG_SIZE);
    if (n == -EAGAIN) continue;
    if (n == -ENOBUFS) {
      atomic_fetch_add(&c->kernel_drops, 1);
      continue;
    }
    if (n < 0) {
      free(buf);
      return throw_errno(env, "proc connector: recv", (int)-n);
    }
    int ack_err = 0;
    if (n > 0 && parse_datagram(c, buf, (size_t)n, realtime_offset(), early, seq, &ack_err)) {
      free(buf);
      if (ack_err) return throw_errno(env, "proc connector: PROC_CN_MCAST_LISTEN refused", ack_err);
      napi_value ok;
      napi_get_boolean(env, true, &ok);
      return ok;
    }
  }
}

/*
 * Which notices a socket takes, filtered in the kernel (classic BPF on the first message's
 * proc_event.what). A load reads big-endian, so the constants are compared in that order. The
 * lazy socket takes forks and exits, the main one everything else; both take PROC_EVENT_NONE,
 * the acknowledgement of their LISTEN.
 */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define WHAT_K(v) __builtin_bswap32((uint32_t)(v))
#else
#define WHAT_K(v) ((uint32_t)(v))
#endif
#define WHAT_OFFSET (NLMSG_HDRLEN + sizeof(struct cn_msg) + offsetof(struct proc_event, what))
static const struct sock_filter lazy_only[] = {
  BPF_STMT(BPF_LD | BPF_W | BPF_ABS, WHAT_OFFSET),
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, WHAT_K(PROC_EVENT_FORK), 3, 0),
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, WHAT_K(PROC_EVENT_EXIT), 2, 0),
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, WHAT_K(PROC_EVENT_NONE), 1, 0),
  BPF_STMT(BPF_RET | BPF_K, 0),
  BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
};
static const struct sock_filter urgent_only[] = {
  BPF_STMT(BPF_LD | BPF_W | BPF_ABS, WHAT_OFFSET),
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, WHAT_K(PROC_EVENT_FORK), 1, 0),
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, WHAT_K(PROC_EVENT_EXIT), 0, 1),
  BPF_STMT(BPF_RET | BPF_K, 0),
  BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
};
#define FILTER(f) (&(const struct sock_fprog){.len = sizeof f / sizeof f[0], .filter = (struct sock_filter *)f})

/* A NETLINK_CONNECTOR socket with the receive buffer asked for, bound to the proc events group;
 * -errno on failure. `filter`: what it takes (NULL: everything), attached before the bind so that
 * no notice it should not take is ever queued on it. */
static int open_proc_socket(int rcvbuf_bytes, const struct sock_fprog *filter) {
  int sock = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);
  if (sock < 0) return -errno;
  /* FORCE passes net.core.rmem_max when we are root; otherwise take what the sysctl allows. */
  if (setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf_bytes, sizeof rcvbuf_bytes) != 0)
    setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &rcvbuf_bytes, sizeof rcvbuf_bytes);
  struct sockaddr_nl addr = {.nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC, .nl_pid = 0};
  if ((filter && setsockopt(sock, SOL_SOCKET, SO_ATTACH_FILTER, filter, sizeof *filter) != 0) ||
      bind(sock, (struct sockaddr *)&addr, sizeof addr) != 0) {
    int err = errno;
    close(sock);
    return -err;
  }
  return sock;
}

/* The lazy socket, subscribed: forks and exits from now on go there. -1 where it cannot be had;
 * the caller then lets the main socket take everything, as with one socket. An error subscribe()
 * threw is cleared: the main socket's own subscription will say what is wrong. */
static int open_lazy(napi_env env, mw_conn *c, int rcvbuf_bytes, mw_batch *early) {
  int lazy = open_proc_socket(rcvbuf_bytes, FILTER(lazy_only));
  if (lazy < 0) return -1;
  if (!subscribe(env, c, lazy, early)) {
    napi_value ignored;
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &ignored);
    close(lazy);
    return -1;
  }
  return lazy;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], resource, handle;
  napi_valuetype t;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function)
    return throw_code(env, "ERR_INVALID_ARG_TYPE", "open(callback, options?): callback must be a function");
  int threads = 0, packed = 0, reads = 0, loginuid = 1, status = 1;
  uint32_t hold_us = 0, quiet_us = 0;
  uint32_t queue = DEFAULT_QUEUE;
  uint32_t rcvbuf_kb = RCVBUF_BYTES / 1024;
  if (argc >= 2 && napi_typeof(env, argv[1], &t) == napi_ok && t == napi_object) {
    threads = get_bool(env, argv[1], "threads", 0);
    packed = get_bool(env, argv[1], "packed", 0);
    reads = get_bool(env, argv[1], "readExecs", 0);
    loginuid = get_bool(env, argv[1], "readLoginuid", 1);
    status = get_bool(env, argv[1], "readStatus", 1);
    hold_us = get_uint(env, argv[1], "holdUs", 0);
    quiet_us = get_uint(env, argv[1], "quietUs", 0);
    queue = get_uint(env, argv[1], "queueSize", DEFAULT_QUEUE);
    rcvbuf_kb = get_uint(env, argv[1], "socketBufferKb", rcvbuf_kb);
  }
  /* Bounds that keep the int below from overflowing and the buffer from being useless. */
  if (rcvbuf_kb < 64) rcvbuf_kb = 64;
  if (rcvbuf_kb > 1024 * 1024) rcvbuf_kb = 1024 * 1024;

  unsigned long ours, host;
  if (other_netns(&ours, &host))
    return throw_code(env, "ERR_NOT_HOST_NETNS",
                      "the proc connector answers only in the host's network namespace: this process is in "
                      "net:[%lu], the host (pid 1) in net:[%lu]; no process events would ever arrive here",
                      ours, host);

  mw_conn *c = calloc(1, sizeof *c);
  mw_batch *early = batch_new(packed);
  if (!c || !early) {
    free(c);
    free(early);
    return throw_code(env, "ENOMEM", "proc connector: out of memory");
  }
  c->env = env;
  c->threads = threads;
  c->packed = packed;
  /* Reads are handed over with packed batches only. */
  c->read_execs = packed && reads;
  atomic_init(&c->read_flags, (loginuid ? MW_READ_LOGINUID : 0) | (status ? MW_READ_STATUS : 0));
  c->hold_ns = (int64_t)(hold_us > 100000 ? 100000 : hold_us) * 1000;
  c->quiet_ns = (int64_t)(quiet_us > 1000000 ? 1000000 : quiet_us) * 1000;
  if (c->quiet_ns < c->hold_ns) c->quiet_ns = c->hold_ns;
  mw_quiet_init(&c->quiet);
  c->wake[0] = c->wake[1] = -1;

  c->lazy = -1;
  int sz = (int)(rcvbuf_kb * 1024);
  /* Forks and exits on a socket of their own (see reader_main), where the kernel can filter: the
   * main socket is bound with the filter that leaves them out, then the lazy one subscribed, then
   * the main one. Both are bound before either subscribes, so no notice falls between them. */
  c->sock = open_proc_socket(sz, FILTER(urgent_only));
  int filtered = c->sock >= 0;
  if (!filtered) c->sock = open_proc_socket(sz, NULL);
  if (c->sock < 0) {
    int err = -c->sock;
    free(c);
    free(early);
    return throw_errno(env, "proc connector: socket(AF_NETLINK, NETLINK_CONNECTOR) bound to the CN_IDX_PROC group", err);
  }
  if (filtered) c->lazy = open_lazy(env, c, sz, early);
  if (filtered && c->lazy < 0) setsockopt(c->sock, SOL_SOCKET, SO_DETACH_FILTER, NULL, 0);
  napi_value ok = subscribe(env, c, c->sock, early);
  if (!ok) goto fail;
  order_events(early, 0);

  if (pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw_errno(env, "proc connector: pipe", errno);
    goto fail_listening;
  }
  napi_create_string_utf8(env, "minewatch:proc-connector", NAPI_AUTO_LENGTH, &resource);
  if (napi_create_threadsafe_function(env, argv[0], NULL, resource, queue, 1, NULL, NULL, NULL, call_js, &c->tsfn) != napi_ok) {
    throw_code(env, "ERR_PROC_CONNECTOR", "proc connector: cannot create the thread-safe function");
    goto fail_listening;
  }
  /* Events that came in before the ack are real: deliver them first. */
  if (early->count > 0 && napi_call_threadsafe_function(c->tsfn, early, napi_tsfn_nonblocking) == napi_ok) early = NULL;
  batch_free(early);
  early = NULL;
  if (pthread_create(&c->thread, NULL, reader_main, c) != 0) {
    napi_release_threadsafe_function(c->tsfn, napi_tsfn_abort);
    throw_code(env, "ERR_PROC_CONNECTOR", "proc connector: cannot start the reader thread");
    goto fail_listening;
  }
  napi_add_env_cleanup_hook(env, cleanup_hook, c);
  if (napi_create_external(env, c, handle_finalize, NULL, &handle) != napi_ok) {
    conn_close(c, 0);
    mw_quiet_destroy(&c->quiet);
    free(c);
    return throw_code(env, "ERR_PROC_CONNECTOR", "proc connector: cannot create the handle");
  }
  return handle;

fail_listening:
  send_mcast_op(c->sock, PROC_CN_MCAST_IGNORE, 0);
fail:
  if (c->lazy >= 0) {
    send_mcast_op(c->lazy, PROC_CN_MCAST_IGNORE, 0);
    close(c->lazy);
  }
  close(c->sock);
  if (c->wake[0] >= 0) close(c->wake[0]);
  if (c->wake[1] >= 0) close(c->wake[1]);
  mw_quiet_destroy(&c->quiet);
  free(c);
  free(early);
  return NULL;
}

static mw_conn *get_conn(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype t;
  void *data = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external ||
      napi_get_value_external(env, argv[0], &data) != napi_ok || !data) {
    throw_code(env, "ERR_INVALID_ARG_TYPE", "expected a handle returned by open()");
    return NULL;
  }
  return data;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  mw_conn *c = get_conn(env, info);
  if (c) conn_close(c, 0);
  return NULL;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  mw_conn *c = get_conn(env, info);
  if (!c) return NULL;
  napi_value o, v;
  napi_create_object(env, &o);
  napi_create_double(env, (double)atomic_load(&c->events), &v);
  napi_set_named_property(env, o, "events", v);
  napi_create_double(env, (double)atomic_load(&c->drops), &v);
  napi_set_named_property(env, o, "drops", v);
  napi_create_double(env, (double)atomic_load(&c->kernel_drops), &v);
  napi_set_named_property(env, o, "kernelDrops", v);
  napi_get_boolean(env, !c->closed, &v);
  napi_set_named_property(env, o, "open", v);
  napi_get_boolean(env, c->lazy >= 0, &v);
  napi_set_named_property(env, o, "lazySocket", v);
  napi_create_double(env, (double)atomic_load(&c->batches), &v);
  napi_set_named_property(env, o, "batches", v);
  return o;
}

/* Notices lost so far (drops + kernelDrops of stats()), as one number: the agent's recovery looks
 * at it twice a second, and stats()' object of six properties cost ~60 µs a call (issue 16). */
static napi_value js_drops(napi_env env, napi_callback_info info) {
  mw_conn *c = get_conn(env, info);
  if (!c) return NULL;
  napi_value v;
  napi_create_double(env, (double)(atomic_load(&c->drops) + atomic_load(&c->kernel_drops)), &v);
  return v;
}

/* The handle and a whole number in [0, 2^53) (setQuiet's epoch, markQuiet's signature). */
static mw_conn *conn_and_number(napi_env env, napi_callback_info info, const char *usage, uint64_t max, uint64_t *out) {
  size_t argc = 2;
  napi_value argv[2];
  void *data = NULL;
  double d = -1;
  napi_valuetype t;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external || napi_get_value_external(env, argv[0], &data) != napi_ok ||
      !data || napi_get_value_double(env, argv[1], &d) != napi_ok || !(d >= 0) || d > (double)max || d != (double)(uint64_t)d) {
    throw_code(env, "ERR_INVALID_ARG_TYPE", "%s", usage);
    return NULL;
  }
  *out = (uint64_t)d;
  return data;
}

/* setQuiet(handle, epoch): quiet execs on under a new epoch (every signature forgotten), or off (0). */
static napi_value js_set_quiet(napi_env env, napi_callback_info info) {
  uint64_t epoch;
  mw_conn *c = conn_and_number(env, info, "setQuiet(handle, epoch): epoch must be a whole number up to 2^32 - 1", UINT32_MAX, &epoch);
  if (c) mw_quiet_set_epoch(&c->quiet, (uint32_t)epoch);
  return NULL;
}

/* markQuiet(handle, sig) -> boolean: execs of this signature are quiet until the next epoch (false: quiet execs are off). */
static napi_value js_mark_quiet(napi_env env, napi_callback_info info) {
  uint64_t sig;
  napi_value out;
  mw_conn *c = conn_and_number(env, info, "markQuiet(handle, sig): sig must be a whole number below 2^53", (1ULL << 53) - 1, &sig);
  if (!c) return NULL;
  napi_get_boolean(env, mw_quiet_mark(&c->quiet, sig), &out);
  return out;
}

/* One bit of the reads' flags on or off, for the reads the reader thread makes from now on. */
static napi_value set_read_flag(napi_env env, napi_callback_info info, int bit, const char *usage) {
  uint64_t on;
  mw_conn *c = conn_and_number(env, info, usage, 1, &on);
  if (!c) return NULL;
  if (on) atomic_fetch_or(&c->read_flags, bit);
  else atomic_fetch_and(&c->read_flags, ~bit);
  return NULL;
}

/* setReadLoginuid(handle, on): whether the reads of execs from now on take loginuid. */
static napi_value js_set_read_loginuid(napi_env env, napi_callback_info info) {
  return set_read_flag(env, info, MW_READ_LOGINUID, "setReadLoginuid(handle, on): on must be 0 or 1");
}

/* setReadStatus(handle, on): whether the reads of execs from now on take /proc/PID/status. */
static napi_value js_set_read_status(napi_env env, napi_callback_info info) {
  return set_read_flag(env, info, MW_READ_STATUS, "setReadStatus(handle, on): on must be 0 or 1");
}

/* An optional boolean argument (undefined: `dflt`); -1 when it is something else. */
static int opt_bool(napi_env env, size_t argc, napi_value *argv, size_t i, int dflt) {
  napi_valuetype t = napi_undefined;
  if (argc > i) napi_typeof(env, argv[i], &t);
  if (t == napi_undefined) return dflt;
  bool v;
  return napi_get_value_bool(env, argv[i], &v) == napi_ok ? v : -1;
}

/* readExec(pid, loginuid = true, status = true) -> Buffer | null: the read the reader thread
 * makes of an exec (readExecs), here on the calling thread; for tests and tools. */
static napi_value js_read_exec(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  int32_t pid = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &pid) != napi_ok || pid <= 0)
    return throw_code(env, "ERR_INVALID_ARG_TYPE", "readExec(pid, loginuid?, status?): pid must be a positive integer");
  int loginuid = opt_bool(env, argc, argv, 1, 1), status = opt_bool(env, argc, argv, 2, 1);
  if (loginuid < 0 || status < 0)
    return throw_code(env, "ERR_INVALID_ARG_TYPE", "readExec(pid, loginuid?, status?): loginuid and status must be booleans");
  mw_exec_read *r = mw_read_exec(pid, (loginuid ? MW_READ_LOGINUID : 0) | (status ? MW_READ_STATUS : 0), NULL);
  if (!r) {
    napi_get_null(env, &out);
    return out;
  }
  napi_status st = napi_create_buffer_copy(env, r->len, r->data, NULL, &out);
  mw_exec_read_free(r);
  if (st != napi_ok) napi_get_null(env, &out);
  return out;
}

#else /* not Linux: the module loads, and open() says why it cannot work */

static napi_value js_open(napi_env env, napi_callback_info info) {
  (void)info;
  napi_throw_error(env, "ENOSYS", "the proc connector exists only on Linux");
  return NULL;
}
static napi_value js_close(napi_env env, napi_callback_info info) { (void)env; (void)info; return NULL; }
static napi_value js_stats(napi_env env, napi_callback_info info) { return js_open(env, info); }
static napi_value js_drops(napi_env env, napi_callback_info info) { return js_open(env, info); }
static napi_value js_read_exec(napi_env env, napi_callback_info info) { return js_open(env, info); }
static napi_value js_set_quiet(napi_env env, napi_callback_info info) { return js_open(env, info); }
static napi_value js_mark_quiet(napi_env env, napi_callback_info info) { return js_open(env, info); }
static napi_value js_set_read_loginuid(napi_env env, napi_callback_info info) { return js_open(env, info); }
static napi_value js_set_read_status(napi_env env, napi_callback_info info) { return js_open(env, info); }

#endif

void mw_pidfd_register(napi_env env, napi_value exports); /* native/pidfd.c */
void mw_malloc_register(napi_env env, napi_value exports); /* native/malloc_tune.c */
void mw_resident_register(napi_env env, napi_value exports); /* native/resident_pages.c */

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_enumerable, NULL},
      {"drops", NULL, js_drops, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readExec", NULL, js_read_exec, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setQuiet", NULL, js_set_quiet, NULL, NULL, NULL, napi_enumerable, NULL},
      {"markQuiet", NULL, js_mark_quiet, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setReadLoginuid", NULL, js_set_read_loginuid, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setReadStatus", NULL, js_set_read_status, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  mw_pidfd_register(env, exports);
  mw_malloc_register(env, exports);
  mw_resident_register(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
