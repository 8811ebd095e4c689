/* The /proc read of an exec by the proc connector's reader thread: see proc_exec_read.c. */
#ifndef MW_PROC_EXEC_READ_H
#define MW_PROC_EXEC_READ_H
#include <stddef.h>

/* Record tags of a blob (src/sources/proc-exec-read.ts reads them). */
enum {
  MW_REC_STAT = 1,     /* /proc/PID/stat, the opening mark's */
  MW_REC_STATUS_FIELDS = 2, /* from /proc/PID/status, 10 u64: ppid, ruid, euid, rgid, egid, vpid (last of
                             * NStgid), CapInh, CapPrm, CapEff, and a mask of those found (bit i: field i);
                             * without MW_READ_STATUS only euid and egid, from a stat of /proc/PID */
  MW_REC_CMDLINE = 3,  /* /proc/PID/cmdline (at most 1 MiB) */
  MW_REC_ENVIRON = 4,  /* /proc/PID/environ (at most 1 MiB) */
  MW_REC_LOGINUID = 5, /* /proc/PID/loginuid (MW_READ_LOGINUID only; empty when unreadable) */
  MW_REC_CGROUP = 6,   /* /proc/PID/cgroup */
  MW_REC_EXE_LINK = 7, /* readlink of /proc/PID/exe */
  MW_REC_EXE_STAT = 8, /* stat of the exe: 8 u64 (dev, ino, mode, uid, gid, size, mtime ns, ctime ns) */
  MW_REC_EXE_FS = 9,   /* statfs of the exe: 2 u64 (f_type, f_flags) */
  MW_REC_ROOT_LINK = 10,  /* readlink of /proc/PID/root: an exe on an overlay only */
  MW_REC_MNTNS_LINK = 11, /* readlink of /proc/PID/ns/mnt: an exe on an overlay only */
};

typedef struct {
  char *data;
  size_t len;
} mw_exec_read;

/* A /proc/PID/stat line split once: comm (from the first '(' to the last ')': a comm may hold
 * both) and where each field from the 3rd to the 51st starts (NULL past the line's end). */
#define MW_STAT_LAST 51
typedef struct {
  const char *comm;
  size_t comm_len;
  const char *end;
  const char *field[MW_STAT_LAST + 1];
} mw_stat_line;

/* 0, or -1 when the line has no comm. */
int mw_stat_split(const char *s, size_t n, mw_stat_line *out);
/* Field i's length (0 when absent). */
size_t mw_stat_len(const mw_stat_line *l, int i);

/* What mw_read_exec reads besides what every exec needs (bits). */
enum {
  MW_READ_LOGINUID = 1, /* /proc/PID/loginuid: an empty MW_REC_LOGINUID when it cannot be read */
  MW_READ_STATUS = 2,   /* /proc/PID/status (vpid, capabilities); without it the ids come from a stat of
                         * /proc/PID, which the kernel always gives the effective uid and gid */
};

/* NULL: gone, unreadable, or never settled (see proc_exec_read.c); then *reaped (when not NULL)
 * says whether /proc/PID was already gone (a zombie still has it). Blocking; not for the JS thread
 * except in tests. */
mw_exec_read *mw_read_exec(int pid, int flags, int *reaped);
/* 1 when /proc/PID is gone: the process exited and was reaped. */
int mw_proc_reaped(int pid);
void mw_exec_read_free(mw_exec_read *r);

#endif
