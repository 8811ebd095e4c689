/*
 * The records the BPF programs (minewatch.bpf.c) put on the ring buffer and the config they read,
 * shared with the loader (addon.c). The TypeScript decoder (src/sources/ebpf/decode.ts) reads the
 * same layout: change both together. Little-endian, naturally aligned, no padding surprises: every
 * struct is laid out with explicit padding.
 */
#ifndef MINEWATCH_BPF_H
#define MINEWATCH_BPF_H

#define MW_EV_EXEC 1
#define MW_EV_FORK 2
#define MW_EV_EXIT 3
#define MW_EV_SYSCALL 4
#define MW_EV_FPU 5

/* Byte budgets of the variable parts. */
#define MW_ARGV_MAX 4096   /* argv of an exec (the kernel copy, NUL separated) */
#define MW_STR_MAX 512     /* one path or name argument */
#define MW_PATH_MAX 1024   /* a resolved path: its components, leaf first, NUL separated */
#define MW_PATH_DEPTH 24   /* components walked */
#define MW_BUF_MAX 1024    /* payload bytes captured from one send or write */
#define MW_DNS_MAX 1024    /* bytes of a DNS answer or query (each message of a sendmmsg) */

/* Per-syscall flags (the `sys_flags` array, indexed by x86-64 syscall number). */
#define MW_SYS_ON 1          /* report it */
#define MW_SYS_SOCK_SEND 2   /* TCP sockets to non-loopback peers, first KiB per socket; and DNS
                                queries: UDP to port 53, every one (the answers are matched to them) */
#define MW_SYS_SOCK_DNS 4    /* only on UDP sockets, answers from port 53 */
#define MW_SYS_OPEN 8        /* open family: only with write/create flags unless open_read */
#define MW_SYS_EXEC 16       /* execve/execveat: remembered for sched_process_exec */
#define MW_SYS_GENERIC 32    /* the generic path: arguments as `sys_desc` describes them */

/*
 * A generic syscall's descriptor (the `sys_desc` array, by syscall number; the loader fills it from
 * src/sources/ebpf/syscalls.ts): which arguments are user strings to copy at the exit, and which
 * file descriptor the event acts on (described like an open's: path, device, inode; or a socket's
 * addresses).
 */
#define MW_DESC_STR_MASK 0x3f   /* bit i: args[i] points to a NUL-terminated user string */
#define MW_DESC_FD_SHIFT 8      /* 3 bits: 0 none, 1..6 args[n-1], 7 the return value */
#define MW_DESC_FD_RET 7
#define MW_DESC_CWD 0x1000      /* no fd: when the first string is a relative path, the path region
                                   holds the caller's working directory (what it is relative to) */

/* Opens for reading only (no write, create, truncate): the `read_policy` map's one value. */
#define MW_READ_NONE 0      /* not reported */
#define MW_READ_ALL 1       /* every one */
#define MW_READ_PREFIX 2    /* those whose path starts with a prefix in `read_prefixes`, or cannot be judged
                               from its text (relative, or with "/." or "//" in it) */
#define MW_PREFIX_MAX 256   /* bytes of a prefix (and of the path compared with them) */

/* Indexes of the per-CPU counters (the `counters` map). */
#define MW_CNT_DROPS 0      /* records the ring buffer had no room for */
#define MW_CNT_EVENTS 1     /* records written */
#define MW_CNT_N 4

/* The ring reader's state (the one value of the `reader_state` map, which the reader maps and
 * writes): whether a record must wake it. A wake-up is an interrupt (irq_work) on the CPU of the
 * process that execs, however nobody waits: only a reader waiting on the ring's fd (the agent's event loop) is woken. */
#define MW_READER_ANY 0      /* not told (a loader without the map mapped): the kernel's adaptive wake-up */
#define MW_READER_GATHER 1   /* awake, gathering: no wake-up */
#define MW_READER_WAIT 2     /* asleep in poll, or about to be: every record wakes it */
#define MW_READER_QUIET 3    /* asleep in poll with a timer (a storm of quiet records): only a record
                                that is not quiet wakes it, or a quiet one once the ring fills past
                                quiet_fill */

/* The reader_state map's one value. A record is quiet (hdr.kind | MW_KIND_QUIET) when nothing can
 * come of it at once: a fork or an exit (the process table's alone, no rule sees them), or an exec
 * whose signature (struct mw_exec's sig) the agent evaluated before and found nothing in, under
 * the same rules (quiet_execs, this quiet_epoch). A quiet record waits for the reader's timer; any
 * other wakes it as before. Nothing is quiet while quiet_epoch is 0 (issue 16: a wake-up costs
 * some 30 µs of the agent's CPU on a VM, and an exec storm of one command woke it 500 times a
 * second). */
struct mw_reader {
  unsigned int state;       /* MW_READER_*: set by the reader */
  unsigned int quiet_epoch; /* set by the reader; 0: no record is quiet */
  unsigned int quiet_fill;  /* ring bytes unread past which a quiet record wakes the reader anyway */
  unsigned int pad;
};
#define MW_KIND_QUIET 0x100  /* in hdr.kind: the record need not wake a reader in MW_READER_QUIET */
#define MW_KIND_MASK 0xff
#define MW_SIG_BITS 53       /* an exec signature's width: exact as a JavaScript number */

struct mw_config {
  unsigned int self_tgid; /* the agent: its own syscalls are not reported */
  unsigned int fpu;       /* RandomX detector on */
  unsigned int open_read; /* report read-only opens too */
  unsigned int fpu_min;   /* sightings before a process's first FPU record */
};

/* Every record starts with this (48 bytes). */
struct mw_hdr {
  unsigned short kind;
  unsigned short size; /* bytes of the whole record */
  unsigned int pid;    /* tgid */
  unsigned int tid;
  unsigned int uid;    /* effective uid */
  unsigned long long ts;    /* CLOCK_BOOTTIME ns */
  unsigned long long start; /* the process's (thread group leader's) start, CLOCK_BOOTTIME ns */
  char comm[16];
};

/* MW_EV_EXEC: followed by argv (argv_len bytes), filename (fname_len, NUL included), exe path
 * components (path_len), cwd path components (cwd_len), cgroup path components (cgroup_len, leaf
 * first like the paths: the cgroup v2 hierarchy), the cpu (else memory) controller's cgroup v1 path
 * (cgroup1_len, likewise; hybrid and v1 hosts, where container runtimes put containers), environment (env_len,
 * NUL separated). The head
 * describes the process as /proc would, so that user space need not read /proc at all (issue 16).
 * 208 bytes. */
#define MW_EXE_UPPER 1     /* the exe is on an overlay's upper layer */
#define MW_EXE_MEMFD 2     /* the exe is a memfd (memfd_create) */
#define MW_EXE_DELETED 4   /* the exe has no links left */
#define MW_EXE_OVERLAY 8   /* the exe is on an overlay */
#define MW_EXE_RDONLY 16   /* the exe's mount or filesystem is read-only */
#define MW_EXE_KNOWN 32    /* the exe facts below were read (bprm->file was there) */
#define MW_ENV_MAX 4096    /* environment bytes copied */
#define MW_CGROUP_DEPTH 12 /* cgroup path components walked */
struct mw_exec {
  struct mw_hdr h;
  unsigned int ppid;
  unsigned int nr;     /* 59 execve, 322 execveat */
  unsigned int env_size;
  unsigned short argv_len;
  unsigned short fname_len;
  unsigned short path_len;
  unsigned short argv_truncated;
  unsigned short cwd_len;     /* 0 for now: a second path walk passes the verifier's budget */
  unsigned short cgroup_len;
  unsigned short env_len;
  unsigned short exe_flags; /* MW_EXE_* */
  unsigned int ruid, euid, rgid, egid;
  unsigned int loginuid;      /* (u32)-1: unset */
  unsigned int vpid;          /* the pid in the process's own pid namespace */
  unsigned int tty;           /* as /proc/PID/stat's tty_nr encodes it; 0: none */
  unsigned int exe_dev;       /* the superblock's dev_t, the kernel's encoding (major << 20 | minor) */
  unsigned short cgroup1_len; /* a v1 controller's cgroup path (cpu, else memory): hybrid and v1 hosts */
  unsigned short pad0;
  unsigned long long exe_ino;
  unsigned long long exe_mtime; /* ns since the epoch */
  unsigned long long exe_ctime;
  unsigned long long exe_size;
  unsigned int exe_mode, exe_uid, exe_gid, pad;
  unsigned long long cgroup_id; /* the cgroup v2 id (its kernfs inode number) */
  unsigned long long cap_eff, cap_prm, cap_inh;
  unsigned long long cgroup1_id; /* that v1 cgroup's id; 0: none (pure cgroup v2, or both at a root) */
  unsigned long long sig; /* a hash (MW_SIG_BITS) of everything above from ppid on but vpid, of the
                             bytes that follow, and of the parent's start time: two execs with the
                             same signature differ only in the process's own ids and times (or by
                             a collision, which costs an alert quiet_ms of latency, never the alert) */
};

/* MW_EV_FORK (pid/tid are the child's) and MW_EV_EXIT. 56 bytes. */
struct mw_task {
  struct mw_hdr h;
  unsigned int ppid;
  int exit_code; /* exit: the wait status; fork: the child's pid in its own pid namespace */
};

/* MW_EV_SYSCALL: followed by str (str_len), path (path_len), buf (buf_len). 176 bytes. */
struct mw_sys {
  struct mw_hdr h;
  long long ret;
  unsigned long long args[6];
  unsigned int nr;
  unsigned short str_len;
  unsigned short path_len;
  unsigned short buf_len;
  unsigned char family; /* AF_INET, AF_INET6, 0: not a socket */
  unsigned char proto;  /* IPPROTO_TCP, IPPROTO_UDP */
  unsigned short sport; /* local port, host order */
  unsigned short dport; /* peer port, host order */
  unsigned char saddr[16];
  unsigned char daddr[16];
  unsigned int dev;
  unsigned int netns;  /* sockets: the network namespace's inode number */
  unsigned long long ino; /* files: the inode; sockets: the socket's inode (socket:[ino]) */
  unsigned int ruid, euid; /* after the call (setuid family) */
};

/* MW_EV_FPU. 128 bytes. Counts are per process (tgid and start time) since it was first seen away
 * from round-to-nearest; runtime and tstart are the switched-out thread's own. */
struct mw_fpu {
  struct mw_hdr h;
  unsigned long long count;   /* deactivations seen with a non-default rounding mode */
  unsigned long long changes; /* deactivations whose rounding mode differed from the one before */
  unsigned long long first;   /* CLOCK_BOOTTIME ns of the first sighting */
  unsigned long long seen;    /* deactivations seen since then, any mode */
  unsigned int modes[4];      /* deactivations seen per mode: 0 nearest, 1 down, 2 up, 3 toward zero */
  unsigned long long runtime; /* the thread's CPU time (se.sum_exec_runtime), ns */
  unsigned long long run_delay; /* the thread's time runnable but waiting for a CPU (sched_info), ns */
  unsigned long long tstart;  /* the thread's start, CLOCK_BOOTTIME ns */
  unsigned int cpu;           /* the CPU it left */
  unsigned int pad;
};

#endif
