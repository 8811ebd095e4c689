/*
 * minewatch_native: quiet execs for the proc connector (issue 16), as the eBPF driver has them
 * (minewatch.h, struct mw_reader).
 *
 * Each exec the reader thread reads whole gets a signature: a hash of everything in its read the
 * rules can see, but for pid, pid in its namespace, times and addresses. The agent tells the
 * addon (markQuiet) which signatures it judged twice with nothing coming of them (no rule
 * matched, no detector answered). A batch holding only such execs, forks and exits is handed to
 * JS after the quiet hold (quietUs), not the short one (holdUs): a storm of one command wakes the
 * JS thread a few dozen times a second instead of hundreds. Nothing is skipped: a quiet exec
 * reaches the rules as every exec does, only later, and any other notice ends the quiet hold of
 * the batch it joins.
 *
 * What is left out of the signature costs latency at worst, never an alert: the parent's start
 * time (the kernel does not say it; ppid is in), the process group.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "exec_quiet.h"

/* The status word left out of the signature: the pid in its namespace (proc_exec_read.h). */
#define STATUS_VPID_WORD 5

void mw_quiet_init(mw_quiet_set *q) {
  memset(q, 0, sizeof *q);
  pthread_mutex_init(&q->lock, NULL);
}

void mw_quiet_destroy(mw_quiet_set *q) { pthread_mutex_destroy(&q->lock); }

void mw_quiet_set_epoch(mw_quiet_set *q, uint32_t epoch) {
  pthread_mutex_lock(&q->lock);
  if (epoch != q->epoch) {
    memset(q->slots, 0, sizeof q->slots);
    q->used = 0;
    q->epoch = epoch;
  }
  pthread_mutex_unlock(&q->lock);
}

uint32_t mw_quiet_epoch(mw_quiet_set *q) {
  pthread_mutex_lock(&q->lock);
  uint32_t e = q->epoch;
  pthread_mutex_unlock(&q->lock);
  return e;
}

static size_t slot_of(uint64_t sig) { return (size_t)((sig * 0x9e3779b97f4a7c15ULL) >> 32) & (MW_QUIET_SLOTS - 1); }

int mw_quiet_mark(mw_quiet_set *q, uint64_t sig) {
  if (sig == 0) return 0;
  pthread_mutex_lock(&q->lock);
  int stored = 0;
  if (q->epoch != 0) {
    /* A quarter full: start over (a host with that many distinct harmless execs re-learns them). */
    if (q->used >= MW_QUIET_SLOTS / 4) {
      memset(q->slots, 0, sizeof q->slots);
      q->used = 0;
    }
    size_t i = slot_of(sig);
    while (q->slots[i] != 0 && q->slots[i] != sig) i = (i + 1) & (MW_QUIET_SLOTS - 1);
    if (q->slots[i] == 0) {
      q->slots[i] = sig;
      q->used++;
    }
    stored = 1;
  }
  pthread_mutex_unlock(&q->lock);
  return stored;
}

int mw_quiet_has(mw_quiet_set *q, uint64_t sig) {
  if (sig == 0) return 0;
  pthread_mutex_lock(&q->lock);
  int found = 0;
  if (q->epoch != 0) {
    for (size_t i = slot_of(sig); q->slots[i] != 0; i = (i + 1) & (MW_QUIET_SLOTS - 1)) {
      if (q->slots[i] == sig) {
        found = 1;
        break;
      }
    }
  }
  pthread_mutex_unlock(&q->lock);
  return found;
}

/* ---- the signature ---- */

static uint64_t mix(uint64_t h, uint64_t w) {
  h ^= w;
  h *= 0xff51afd7ed558ccdULL;
  return h ^ (h >> 32);
}

static uint64_t mix_bytes(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  h = mix(h, n);
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = mix(h, w);
  }
  if (n) {
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = mix(h, w);
  }
  return h;
}

/* From a stat line: comm, and fields 4 (ppid), 6 (session) and 7 (tty). Not the pid, process
 * group, times, sizes or addresses. */
static uint64_t mix_stat(uint64_t h, const char *s, size_t n) {
  mw_stat_line l;
  if (mw_stat_split(s, n, &l) != 0) return mix_bytes(h, s, n);
  h = mix_bytes(h, l.comm, l.comm_len);
  static const int fields[] = {4, 6, 7};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) h = mix_bytes(h, l.field[fields[i]] ? l.field[fields[i]] : "", mw_stat_len(&l, fields[i]));
  return h;
}

uint64_t mw_exec_signature(const mw_exec_read *r) {
  uint64_t h = 0x6d696e6577617463ULL; /* "minewatc" */
  int have_stat = 0;
  for (size_t at = 0; at + 8 <= r->len;) {
    uint32_t tag, len;
    memcpy(&tag, r->data + at, 4);
    memcpy(&len, r->data + at + 4, 4);
    const char *body = r->data + at + 8;
    if (len > r->len - at - 8) break;
    h = mix(h, tag);
    if (tag == MW_REC_STAT) {
      h = mix_stat(h, body, len);
      have_stat = 1;
    } else if (tag == MW_REC_STATUS_FIELDS) {
      for (size_t w = 0; (w + 1) * 8 <= len; w++) {
        uint64_t v;
        memcpy(&v, body + w * 8, 8);
        if (w != STATUS_VPID_WORD) h = mix(h, v);
      }
    } else {
      h = mix_bytes(h, body, len);
    }
    at += 8 + (((size_t)len + 3) & ~(size_t)3);
  }
  if (!have_stat) return 0;
  h &= (1ULL << 53) - 1;
  return h ? h : 1;
}
