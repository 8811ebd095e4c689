/* Quiet execs of the proc connector: see exec_quiet.c. */
#ifndef MW_EXEC_QUIET_H
#define MW_EXEC_QUIET_H
#include <pthread.h>
#include <stdint.h>

#include "proc_exec_read.h"

/* Signatures the agent judged harmless (an open-addressed set, cleared when a quarter full). */
#define MW_QUIET_SLOTS 16384

typedef struct {
  pthread_mutex_t lock;
  uint32_t epoch;   /* 0: off, every exec is loud */
  uint32_t used;
  uint64_t slots[MW_QUIET_SLOTS]; /* 0: empty */
} mw_quiet_set;

void mw_quiet_init(mw_quiet_set *q);
void mw_quiet_destroy(mw_quiet_set *q);
/* A new epoch forgets every signature; 0 turns quiet execs off. */
void mw_quiet_set_epoch(mw_quiet_set *q, uint32_t epoch);
uint32_t mw_quiet_epoch(mw_quiet_set *q);
/* Remember `sig` as quiet under the current epoch; 0 when off or sig is 0. */
int mw_quiet_mark(mw_quiet_set *q, uint64_t sig);
int mw_quiet_has(mw_quiet_set *q, uint64_t sig);

/* The signature of an exec read (53 bits, never 0): two reads with the same one differ, as far as
 * the rules can tell, only in pid, times and addresses. 0 when the read has no stat record. */
uint64_t mw_exec_signature(const mw_exec_read *r);

#endif
