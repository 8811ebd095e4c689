// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
/*
 * minewatch's kernel side: BTF-typed raw tracepoints only (tp_btf), so it needs neither kprobes nor
 * tracefs nor kernel headers: one CO-RE object, built against a vmlinux.h from the build host's BTF
 * and relocated by libbpf against the running kernel's /sys/kernel/btf/vmlinux.
 *
 *   sched_process_exec / fork / exit    the process table's lifecycle (exec with the kernel's copy
 *                                       of argv, so a process that lives 100 µs still has one)
 *   sys_enter / sys_exit                the syscalls the rules and detectors read, filtered here
 *                                       (sys_flags): a write to a file never leaves the kernel
 *   x86_fpu_regs_deactivated            the RandomX detector: the saved MXCSR's rounding mode
 *
 * Records go up one ring buffer (layouts in minewatch.h); a full ring buffer counts a drop per CPU.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "minewatch.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define SOCK_STREAM 1
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define O_ACCMODE 3
#define O_CREAT 0100
#define O_TRUNC 01000
#define O_TMPFILE 020000000
#define EINPROGRESS 115

/* x86-64 syscall numbers. */
#define NR_write 1
#define NR_open 2
#define NR_writev 20
#define NR_connect 42
#define NR_sendto 44
#define NR_recvfrom 45
#define NR_sendmsg 46
#define NR_recvmsg 47
#define NR_execve 59
#define NR_creat 85
#define NR_chmod 90
#define NR_fchmod 91
#define NR_ptrace 101
#define NR_setuid 105
#define NR_setresuid 117
#define NR_openat 257
#define NR_fchmodat 268
#define NR_sendmmsg 307
#define NR_memfd_create 319
#define NR_execveat 322
#define NR_openat2 437
#define NR_fchmodat2 452
#define NR_MAX 512

/* Set by the loader before the object is loaded (it patches .rodata). */
const volatile struct mw_config cfg = {};

/* What to report per syscall number (MW_SYS_*): the loader fills it, and again when rules change. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, NR_MAX);
  __type(key, u32);
  __type(value, u32);
} sys_flags SEC(".maps");

static __always_inline u32 sys_flag(u32 nr) {
  u32 *f = bpf_map_lookup_elem(&sys_flags, &nr);
  return f ? *f : 0;
}

/*
 * Syscalls whose entry may have stashed arguments: every one reported at any time since load (the
 * loader only ever sets these), so a call that began before the rules turned it off still finds
 * its arguments at its exit. Any other exit, most of them, looks up nothing.
 */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, NR_MAX);
  __type(key, u32);
  __type(value, u32);
} sys_stashed SEC(".maps");

/* The generic path's descriptors (MW_DESC_*), by syscall number: the loader fills them once. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, NR_MAX);
  __type(key, u32);
  __type(value, u32);
} sys_desc SEC(".maps");

/* Opens for reading only: which to report (MW_READ_*), set by the loader as the rules change. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, u32);
  __type(value, u32);
} read_policy SEC(".maps");

/* The path prefixes the rules can match on a read (MW_READ_PREFIX): a longest-prefix-match trie
 * over the path's bytes, so one lookup answers for all of them. */
struct prefix_key {
  u32 prefixlen; /* bits */
  u8 data[MW_PREFIX_MAX];
  u8 pad[4];     /* room to look two bytes past the last one compared (see read_wanted) */
};

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, 4096);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(key_size, 4 + MW_PREFIX_MAX);
  __uint(value_size, 4);
} read_prefixes SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, u32);
  __type(value, struct prefix_key);
} prefix_scratch SEC(".maps");

/* Process names (comm) whose opens for reading are all reported under MW_READ_PREFIX: rules that
 * name the process (proc.name=sshd) rather than the file. */
struct comm_key {
  char comm[16];
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, struct comm_key);
  __type(value, u32);
} read_comms SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 16 << 20);
} events SEC(".maps");

/* struct mw_reader: set by the ring reader (on the agent's event loop) through its mapping of this array. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, u32);
  __type(value, struct mw_reader);
  __uint(map_flags, BPF_F_MMAPABLE);
} reader_state SEC(".maps");

/* Exec signatures the agent evaluated and found nothing in, with the quiet epoch they hold under
 * (mw_reader.quiet_epoch: a reload of the rules starts a new one). Least recently used go first. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 4096);
  __type(key, u64);
  __type(value, u32);
} quiet_execs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, MW_CNT_N);
  __type(key, u32);
  __type(value, u64);
} counters SEC(".maps");

/* A syscall's arguments between its entry and its exit, by thread. */
struct stash {
  u64 args[6];
  u64 sk;
  u32 nr;
  u32 dns; /* a send on a UDP socket to port 53: a DNS query */
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, u32);
  __type(value, struct stash);
} stash SEC(".maps");

/* Bytes captured so far per TCP socket: a connection gives up its first KiB, then nothing. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, u64);
  __type(value, u32);
} sent SEC(".maps");

/* Per process (tgid), from its first sighting away from round-to-nearest. */
struct fpu_stat {
  u64 start;
  u64 first;
  u64 count;
  u64 changes;
  u64 seen;
  u64 last_emit;
  u32 modes[4];
  u32 last_mode;
  u32 pad;
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 8192);
  __type(key, u32);
  __type(value, struct fpu_stat);
} fpu_stats SEC(".maps");

/*
 * Processes followed now (entries put in fpu_stats, less those removed at exit or reuse; an LRU
 * eviction leaves it high, which only costs a lookup). While it is 0 — a host where nothing has
 * left round-to-nearest — a switch-out in round-to-nearest costs two loads and returns.
 */
u64 fpu_followed = 0;

static __always_inline void fpu_forget(u32 tgid) {
  /* Nothing followed (the usual host): no delete, whose bucket lock every exit would take. */
  if (fpu_followed && bpf_map_delete_elem(&fpu_stats, &tgid) == 0) __sync_fetch_and_add(&fpu_followed, -1);
}

/* Room to build one record: a head, then variable parts at offsets masked below DATA_MASK. */
#define SCRATCH 16384
#define DATA_MASK 8191
struct scratch {
  u8 b[SCRATCH];
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, u32);
  __type(value, struct scratch);
} scratch SEC(".maps");

static __always_inline void count(u32 idx) {
  u64 *c = bpf_map_lookup_elem(&counters, &idx);
  if (c) *c += 1;
}

static __always_inline volatile struct mw_reader *reader(void) {
  u32 zero = 0;
  return bpf_map_lookup_elem(&reader_state, &zero);
}

/* Whether a record wakes a reader in this state (MW_READER_ANY: the kernel's adaptive wake-up). */
static __always_inline int wakes(u32 state, int quiet) {
  return state == MW_READER_WAIT || (state == MW_READER_QUIET && !quiet);
}

/*
 * Wake the reader only when it sleeps (MW_READER_WAIT), or sleeps through quiet records
 * (MW_READER_QUIET) and this one is not: while it gathers, a wake-up would be an interrupt for
 * nobody on this CPU, charged to the process that execs (about 1 µs a record on average, measured;
 * issue 16). The reader sets its state, then looks at the ring once more, then sleeps; this side
 * writes its record, then reads the state again: of a record written while the reader was going to
 * sleep, either the reader's last look sees it, or the second read here sees a state that wants
 * it woken and an empty nudge record (too short for the loader to keep) wakes it. A quiet record
 * still wakes a quiet reader once the ring holds more than quiet_fill bytes, before it overflows.
 */
static __always_inline void emit(void *rec, u64 size) {
  if (size > SCRATCH - 1) size = SCRATCH - 1;
  volatile struct mw_reader *rd = reader();
  u32 was = rd ? rd->state : MW_READER_ANY;
  int quiet = (((struct mw_hdr *)rec)->kind & MW_KIND_QUIET) != 0;
  if (quiet && was == MW_READER_QUIET && rd && bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > rd->quiet_fill) quiet = 0;
  u64 flags = wakes(was, quiet) ? BPF_RB_FORCE_WAKEUP : was == MW_READER_ANY ? 0 : BPF_RB_NO_WAKEUP;
  if (bpf_ringbuf_output(&events, rec, size, flags) != 0) {
    count(MW_CNT_DROPS);
    return;
  }
  count(MW_CNT_EVENTS);
  if (rd && !wakes(was, quiet) && was != MW_READER_ANY && wakes(rd->state, quiet)) {
    u64 nudge = 0;
    bpf_ringbuf_output(&events, &nudge, sizeof nudge, BPF_RB_FORCE_WAKEUP);
  }
}

/* A fork or an exit: quiet whenever the reader lets records be (nothing but the table reads them). */
static __always_inline u16 task_kind(u16 kind) {
  volatile struct mw_reader *rd = reader();
  return rd && rd->quiet_epoch ? kind | MW_KIND_QUIET : kind;
}

static __always_inline struct scratch *get_scratch(void) {
  u32 zero = 0;
  return bpf_map_lookup_elem(&scratch, &zero);
}

static __always_inline void fill_hdr(struct mw_hdr *h, u16 kind, struct task_struct *task) {
  u64 pt = bpf_get_current_pid_tgid();
  h->kind = kind;
  h->pid = pt >> 32;
  h->tid = (u32)pt;
  h->uid = BPF_CORE_READ(task, cred, euid.val);
  h->ts = bpf_ktime_get_boot_ns();
  h->start = BPF_CORE_READ(task, group_leader, start_boottime);
  bpf_get_current_comm(h->comm, sizeof h->comm);
}

/*
 * Write a path's components, leaf first, NUL separated, at data[pos..], crossing mount points up
 * to the root of the mount namespace; returns the bytes written. User space reverses them.
 */
static __always_inline u32 put_path(u8 *data, u32 pos, struct dentry *dentry, struct vfsmount *vfsmnt) {
  u32 n = 0;
  struct mount *mnt = (void *)vfsmnt - bpf_core_field_offset(struct mount, mnt);
  for (int i = 0; i < MW_PATH_DEPTH; i++) {
    struct dentry *root = BPF_CORE_READ(vfsmnt, mnt_root);
    struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
    if (dentry == root || dentry == parent) {
      struct mount *up = BPF_CORE_READ(mnt, mnt_parent);
      if (up == mnt || !up) break; /* the namespace's root */
      dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
      mnt = up;
      vfsmnt = (void *)up + bpf_core_field_offset(struct mount, mnt);
      continue;
    }
    if (n > MW_PATH_MAX - 256) break;
    const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
    long r = bpf_probe_read_kernel_str(data + ((pos + n) & DATA_MASK), 256, name);
    if (r <= 0) break;
    n += r;
    dentry = parent;
  }
  return n;
}

static __always_inline struct file *fd_file(u64 fd) {
  struct task_struct *t = bpf_get_current_task_btf();
  struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
  if (!fdt) return NULL;
  u32 max = BPF_CORE_READ(fdt, max_fds);
  if (fd >= max) return NULL;
  struct file **fds = BPF_CORE_READ(fdt, fd);
  struct file *f = NULL;
  bpf_probe_read_kernel(&f, sizeof f, &fds[fd]);
  return f;
}

static __always_inline struct sock *file_sock(struct file *f) {
  if (!f) return NULL;
  umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
  if ((mode & S_IFMT) != S_IFSOCK) return NULL;
  struct socket *so = BPF_CORE_READ(f, private_data);
  return BPF_CORE_READ(so, sk);
}

static __always_inline void sock_tuple(struct sock *sk, struct mw_sys *e) {
  u16 fam = BPF_CORE_READ(sk, __sk_common.skc_family);
  /* Which namespace's addresses these are, and which socket (its inode, as socket:[ino] shows it):
     DNS answers are learned per network namespace, and only by the socket that asked. */
  e->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
  e->ino = BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
  e->family = (u8)fam;
  e->proto = (u8)BPF_CORE_READ(sk, sk_protocol);
  e->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
  e->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
  if (fam == AF_INET) {
    u32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
    u32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
    __builtin_memcpy(e->saddr, &s, 4);
    __builtin_memcpy(e->daddr, &d, 4);
  } else if (fam == AF_INET6) {
    BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr);
    BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr);
  }
}

/* True for a peer on this host's loopback, or none at all. */
static __always_inline int peer_is_local(struct sock *sk) {
  u16 fam = BPF_CORE_READ(sk, __sk_common.skc_family);
  if (fam == AF_INET) {
    u32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
    return d == 0 || (d & 0xff) == 127;
  }
  if (fam == AF_INET6) {
    u32 w[4];
    BPF_CORE_READ_INTO(&w, sk, __sk_common.skc_v6_daddr);
    if (w[0] == 0 && w[1] == 0) {
      if (w[2] == 0 && (w[3] == 0 || w[3] == bpf_htonl(1))) return 1;
      if (w[2] == bpf_htonl(0xffff) && (w[3] & 0xff) == 127) return 1;
    }
    return 0;
  }
  return 1;
}

/* Port of a user sockaddr_in / sockaddr_in6 (host order), filling the peer address; 0 when none. */
static __always_inline u16 user_sockaddr(const void *uaddr, struct mw_sys *e) {
  struct {
    u16 family;
    u16 port;
    u32 v4_or_flow;
    u8 v6[16];
  } sa = {};
  if (!uaddr || bpf_probe_read_user(&sa, sizeof sa, uaddr)) return 0;
  if (sa.family == AF_INET) {
    __builtin_memset(e->daddr, 0, 16);
    __builtin_memcpy(e->daddr, &sa.v4_or_flow, 4);
  } else if (sa.family == AF_INET6) {
    __builtin_memcpy(e->daddr, sa.v6, 16);
  } else {
    return 0;
  }
  return bpf_ntohs(sa.port);
}

/* The destination a send names in its own arguments (a user pointer): the sockaddr of sendto, the
 * msg_name of sendmsg or of sendmmsg's first message; NULL when none. */
static __always_inline const void *send_sockaddr(u32 nr, const u64 *args) {
  if (nr == NR_sendto) return (const void *)args[4];
  if (nr == NR_sendmsg || nr == NR_sendmmsg) {
    struct user_msghdr m = {};
    if (bpf_probe_read_user(&m, sizeof m, (void *)args[1])) return NULL;
    return m.msg_name;
  }
  return NULL;
}

/* True for a send on a UDP socket to port 53, connected there or naming it in the call. */
static __always_inline int udp_to_dns(struct sock *sk, u32 nr, const u64 *args) {
  u16 dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
  if (dport) return dport == 53;
  const void *ua = send_sockaddr(nr, args);
  struct {
    u16 family;
    u16 port;
  } sa = {};
  if (!ua || bpf_probe_read_user(&sa, sizeof sa, ua)) return 0;
  return (sa.family == AF_INET || sa.family == AF_INET6) && bpf_ntohs(sa.port) == 53;
}

/* Copy the first `n` bytes (at most `max`) of a user buffer to data[0..]; returns bytes copied. */
static __always_inline u32 put_buf(u8 *data, const void *buf, u64 n, u32 max) {
  /* The clamp alone is the verifier's bound: clang drops any mask or second clamp after it (the
     object is the same with them), and a mask in its place cuts a 1,030-byte DNS answer to 6. */
  if (n > max) n = max;
  if (bpf_probe_read_user(data, n, buf)) return 0;
  return n;
}

/* Copy up to `max` bytes of an iovec array (at most 4 entries) to data[pos..]; returns bytes. */
static __always_inline u32 put_iov(u8 *data, u32 pos, const struct iovec *iov, u64 cnt, u64 total, u32 max) {
  u32 n = 0;
  if (total > max) total = max;
  for (int i = 0; i < 4; i++) {
    if (i >= cnt || n >= total) break;
    struct iovec v = {};
    if (bpf_probe_read_user(&v, sizeof v, &iov[i])) break;
    u64 len = v.iov_len;
    if (len > total - n) len = total - n;
    len &= 2047;
    if (len > MW_BUF_MAX) len = MW_BUF_MAX;
    if (bpf_probe_read_user(data + ((pos + n) & DATA_MASK), len, v.iov_base)) break;
    n += len;
  }
  return n;
}

/* ---- processes ---- */

/* ---- what the exec record says about the process (issue 16: user space reads nothing from /proc) ---- */

#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#define MNT_READONLY 0x40
#define SB_RDONLY 1

/* Older kernels' names for fields renamed since (CO-RE picks whichever this kernel has). */
struct kernfs_node___old {
  struct kernfs_node *parent;
} __attribute__((preserve_access_index));

struct inode___old { /* before 6.6: timespec64 times */
  struct timespec64 i_mtime;
  struct timespec64 i_ctime;
} __attribute__((preserve_access_index));

struct inode___v66 { /* 6.6: the ctime made private */
  struct timespec64 i_mtime;
  struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn) {
  if (bpf_core_field_exists(kn->__parent)) return BPF_CORE_READ(kn, __parent);
  return BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
}

/* The cgroup v2 path's components, leaf first, NUL separated (the root's empty name left out). */
static __always_inline u32 put_cgroup(u8 *data, u32 pos, struct kernfs_node *kn) {
  u32 n = 0;
  for (int i = 0; i < MW_CGROUP_DEPTH; i++) {
    if (!kn) break;
    struct kernfs_node *parent = kn_parent(kn);
    if (!parent || n > 512 - 128) break;
    long r = bpf_probe_read_kernel_str(data + ((pos + n) & DATA_MASK), 128, BPF_CORE_READ(kn, name));
    if (r <= 0) break;
    n += r;
    kn = parent;
  }
  return n;
}

/* A controller's cgroup of the task (its css_set's subsys[id]). */
static __always_inline struct cgroup *css_cgroup(struct task_struct *p, int id) {
  struct cgroup_subsys_state *css = NULL;
  struct css_set *cs = BPF_CORE_READ(p, cgroups);
  bpf_core_read(&css, sizeof css, &cs->subsys[id & 15]);
  return BPF_CORE_READ(css, cgroup);
}

/* The exe's identity and what /proc would say about its file: device, inode, times, owner, layer. */
static __always_inline void exe_facts(struct mw_exec *e, struct file *f) {
  if (!f) return;
  struct inode *ino = BPF_CORE_READ(f, f_inode);
  if (!ino) return;
  struct super_block *sb = BPF_CORE_READ(ino, i_sb);
  u16 fl = MW_EXE_KNOWN;
  e->exe_dev = BPF_CORE_READ(sb, s_dev);
  e->exe_ino = BPF_CORE_READ(ino, i_ino);
  e->exe_size = BPF_CORE_READ(ino, i_size);
  e->exe_mode = BPF_CORE_READ(ino, i_mode);
  e->exe_uid = BPF_CORE_READ(ino, i_uid.val);
  e->exe_gid = BPF_CORE_READ(ino, i_gid.val);
  if (bpf_core_field_exists(ino->i_mtime_sec)) {
    e->exe_mtime = BPF_CORE_READ(ino, i_mtime_sec) * 1000000000ULL + BPF_CORE_READ(ino, i_mtime_nsec);
    e->exe_ctime = BPF_CORE_READ(ino, i_ctime_sec) * 1000000000ULL + BPF_CORE_READ(ino, i_ctime_nsec);
  } else if (bpf_core_field_exists(((struct inode___v66 *)ino)->__i_ctime)) {
    struct inode___v66 *o = (void *)ino;
    e->exe_mtime = BPF_CORE_READ(o, i_mtime.tv_sec) * 1000000000ULL + BPF_CORE_READ(o, i_mtime.tv_nsec);
    e->exe_ctime = BPF_CORE_READ(o, __i_ctime.tv_sec) * 1000000000ULL + BPF_CORE_READ(o, __i_ctime.tv_nsec);
  } else {
    struct inode___old *o = (void *)ino;
    e->exe_mtime = BPF_CORE_READ(o, i_mtime.tv_sec) * 1000000000ULL + BPF_CORE_READ(o, i_mtime.tv_nsec);
    e->exe_ctime = BPF_CORE_READ(o, i_ctime.tv_sec) * 1000000000ULL + BPF_CORE_READ(o, i_ctime.tv_nsec);
  }
  if (BPF_CORE_READ(ino, i_nlink) == 0) fl |= MW_EXE_DELETED;
  if ((BPF_CORE_READ(f, f_path.mnt, mnt_flags) & MNT_READONLY) || (BPF_CORE_READ(sb, s_flags) & SB_RDONLY)) fl |= MW_EXE_RDONLY;
  if (BPF_CORE_READ(sb, s_magic) == OVERLAYFS_SUPER_MAGIC) {
    fl |= MW_EXE_OVERLAY;
    /* An overlay inode (struct ovl_inode) keeps its upper dentry right after the VFS inode it
       embeds; set once the file is on the upper layer (created there or copied up). */
    struct dentry *upper = NULL;
    bpf_probe_read_kernel(&upper, sizeof upper, (void *)ino + bpf_core_type_size(struct inode));
    if (upper) fl |= MW_EXE_UPPER;
  }
  /* memfd_create names its files "memfd:NAME". */
  char name[8] = {};
  bpf_probe_read_kernel_str(name, sizeof name, BPF_CORE_READ(f, f_path.dentry, d_name.name));
  if (name[0] == 'm' && name[1] == 'e' && name[2] == 'm' && name[3] == 'f' && name[4] == 'd' && name[5] == ':') fl |= MW_EXE_MEMFD;
  e->exe_flags = fl;
}

/* ids, pid in its namespace, tty, cgroup id, capabilities. */
static __always_inline void proc_facts(struct mw_exec *e, struct task_struct *p) {
  const struct cred *cr = BPF_CORE_READ(p, cred);
  e->ruid = BPF_CORE_READ(cr, uid.val);
  e->euid = BPF_CORE_READ(cr, euid.val);
  e->rgid = BPF_CORE_READ(cr, gid.val);
  e->egid = BPF_CORE_READ(cr, egid.val);
  BPF_CORE_READ_INTO(&e->cap_eff, cr, cap_effective);
  BPF_CORE_READ_INTO(&e->cap_prm, cr, cap_permitted);
  BPF_CORE_READ_INTO(&e->cap_inh, cr, cap_inheritable);
  e->loginuid = bpf_core_field_exists(p->loginuid) ? BPF_CORE_READ(p, loginuid.val) : (u32)-1;
  struct pid *tp = BPF_CORE_READ(p, thread_pid);
  unsigned int level = BPF_CORE_READ(tp, level);
  struct upid up = {};
  bpf_core_read(&up, sizeof up, &tp->numbers[level & 31]);
  e->vpid = up.nr;
  struct tty_struct *tty = BPF_CORE_READ(p, signal, tty);
  if (tty) {
    u32 major = BPF_CORE_READ(tty, driver, major);
    u32 minor = BPF_CORE_READ(tty, driver, minor_start) + BPF_CORE_READ(tty, index);
    e->tty = (minor & 0xff) | (major << 8) | ((minor & ~0xffU) << 12);
  }
}

/* One 64-bit word into the signature (a multiply-xorshift mix: fast, and a collision only ever
 * costs an alert the latency of the reader's quiet timer, never the alert). */
static __always_inline u64 sig_mix(u64 h, u64 w) {
  h ^= w;
  h *= 0x9e3779b97f4a7c15ULL;
  return h ^ (h >> 29);
}

#define SIG_WORDS ((SCRATCH - sizeof(struct mw_exec)) / 8)
_Static_assert(__builtin_offsetof(struct mw_exec, vpid) % 8 == 0, "exec_classify masks vpid as the low half of a word");

/*
 * The exec record's signature (struct mw_exec's sig) written into it, and MW_KIND_QUIET into its
 * kind when the agent found nothing in an exec of this signature under the rules in force (no
 * branch left for the caller: the exec program's verification would double after it). The signature
 * hashes the head from ppid on, less the pid in its namespace (the process's own), the variable
 * part's `len` bytes (argv, paths, cgroups, environment), and the parent's start time (a reused
 * parent pid is another parent). A global function: the verifier checks it once, on its own budget
 * (the exec program's is nearly spent on its path walks).
 */
__noinline int exec_classify(struct scratch *s, u32 len) {
  if (!s) return 0;
  struct mw_exec *e = (void *)s->b;
  struct task_struct *p = bpf_get_current_task_btf();
  u64 h = sig_mix(0, BPF_CORE_READ(p, real_parent, start_boottime));
  for (u32 off = offsetof(struct mw_exec, ppid); off + 8 <= offsetof(struct mw_exec, sig); off += 8) {
    u64 w = *(u64 *)(s->b + off);
    /* vpid is the word's low half (little-endian, 8-byte aligned): the process's own, left out. */
    if (off == offsetof(struct mw_exec, vpid)) w &= ~0xffffffffULL;
    h = sig_mix(h, w);
  }
  for (u32 i = 0; i < SIG_WORDS; i++) {
    u32 a = i * 8;
    if (a >= len) break;
    u64 w = *(u64 *)(s->b + ((sizeof(struct mw_exec) + a) & (SCRATCH - 8)));
    /* The last word's bytes past len are another record's leftovers. */
    if (len - a < 8) w &= (1ULL << ((len - a) * 8)) - 1;
    h = sig_mix(h, w);
  }
  u64 sig = h & ((1ULL << MW_SIG_BITS) - 1);
  if (!sig) sig = 1; /* 0: no signature */
  e->sig = sig;
  volatile struct mw_reader *rd = reader();
  u32 epoch = rd ? rd->quiet_epoch : 0;
  if (!epoch) return 0;
  u32 *seen = bpf_map_lookup_elem(&quiet_execs, &sig);
  if (seen && *seen == epoch) e->h.kind |= MW_KIND_QUIET;
  return 0;
}

/*
 * put_path() for the exec's exe, in the exec record's variable part: a global function, so the
 * verifier walks the path loop once, on a budget of its own, not along every way through the exec
 * program (which left that program no room for its signature, exec_classify). Pointers as numbers:
 * a global function's arguments are scalars or memory of a known size.
 */
__noinline u32 exe_path(struct scratch *s, u32 pos, u64 dentry, u64 vfsmnt) {
  if (!s) return 0;
  return put_path(s->b + sizeof(struct mw_exec), pos, (struct dentry *)dentry, (struct vfsmount *)vfsmnt);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(mw_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) {
  struct scratch *s = get_scratch();
  if (!s) return 0;
  struct mw_exec *e = (void *)s->b;
  u8 *data = s->b + sizeof(struct mw_exec);
  __builtin_memset(e, 0, sizeof *e);
  fill_hdr(&e->h, MW_EV_EXEC, p);
  e->ppid = BPF_CORE_READ(p, real_parent, tgid);
  u32 key = old_pid;
  struct stash *st = bpf_map_lookup_elem(&stash, &key);
  e->nr = st ? st->nr : NR_execve;
  if (st) bpf_map_delete_elem(&stash, &key);
  proc_facts(e, p);

  struct mm_struct *mm = BPF_CORE_READ(p, mm);
  u64 as = BPF_CORE_READ(mm, arg_start), ae = BPF_CORE_READ(mm, arg_end);
  u64 es = BPF_CORE_READ(mm, env_start), ee = BPF_CORE_READ(mm, env_end);
  e->env_size = ee > es ? ee - es : 0;
  u64 len = ae > as ? ae - as : 0;
  if (len > MW_ARGV_MAX) {
    len = MW_ARGV_MAX;
    e->argv_truncated = 1;
  }
  len &= (MW_ARGV_MAX * 2 - 1);
  if (len > MW_ARGV_MAX) len = MW_ARGV_MAX;
  u32 pos = 0;
  if (len && bpf_probe_read_user(data, len, (void *)as) == 0) pos = len;
  e->argv_len = pos;

  const char *fname = BPF_CORE_READ(bprm, filename);
  long r = bpf_probe_read_kernel_str(data + (pos & DATA_MASK), MW_STR_MAX, fname);
  if (r > 0) {
    e->fname_len = r;
    pos += r;
  }
  struct file *f = BPF_CORE_READ(bprm, file);
  u32 pl = exe_path(s, pos, (u64)BPF_CORE_READ(f, f_path.dentry), (u64)BPF_CORE_READ(f, f_path.mnt));
  e->path_len = pl;
  pos += pl;
  exe_facts(e, f);
  struct cgroup *dfl = BPF_CORE_READ(p, cgroups, dfl_cgrp);
  struct kernfs_node *kn = BPF_CORE_READ(dfl, kn);
  if (kn) {
    e->cgroup_id = BPF_CORE_READ(kn, id);
    u32 gl = put_cgroup(data, pos, kn);
    e->cgroup_len = gl;
    pos += gl;
  }
  /* Hybrid and v1 hosts keep containers in the v1 hierarchies: the cpu controller's cgroup (the
     memory controller's where cpu is on the default hierarchy), unless it is a hierarchy's root. */
  struct cgroup *mc = css_cgroup(p, bpf_core_enum_value(enum cgroup_subsys_id, cpu_cgrp_id));
  if (!mc || mc == dfl) mc = css_cgroup(p, bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id));
  struct kernfs_node *mkn = mc && mc != dfl ? BPF_CORE_READ(mc, kn) : NULL;
  if (mkn && kn_parent(mkn)) {
    e->cgroup1_id = BPF_CORE_READ(mkn, id);
    u32 ml = put_cgroup(data, pos, mkn);
    e->cgroup1_len = ml;
    pos += ml;
  }
  /* The environment last (mw.wallet.* looks there), up to MW_ENV_MAX bytes. */
  u64 el = e->env_size;
  if (el > MW_ENV_MAX) el = MW_ENV_MAX;
  el &= (MW_ENV_MAX * 2 - 1);
  if (el > MW_ENV_MAX) el = MW_ENV_MAX;
  if (el && bpf_probe_read_user(data + (pos & DATA_MASK), el, (void *)es) == 0) {
    e->env_len = el;
    pos += el;
  }
  e->h.size = sizeof(struct mw_exec) + pos;
  exec_classify(s, pos);
  emit(e, sizeof(struct mw_exec) + (pos & (SCRATCH - 1)));
  return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(mw_fork, struct task_struct *parent, struct task_struct *child) {
  u32 tgid = BPF_CORE_READ(child, tgid), pid = BPF_CORE_READ(child, pid);
  if (tgid != pid) return 0; /* a new thread, not a process */
  struct mw_task t = {};
  fill_hdr(&t.h, task_kind(MW_EV_FORK), parent);
  t.ppid = t.h.pid;
  t.h.pid = tgid;
  t.h.tid = pid;
  t.h.start = BPF_CORE_READ(child, start_boottime);
  /* The child's pid in its own pid namespace (vpid): with the start time, what /proc would have
     told the process table about a fresh child that it cannot take from the parent. */
  struct pid *tp = BPF_CORE_READ(child, thread_pid);
  unsigned int level = BPF_CORE_READ(tp, level);
  struct upid up = {};
  bpf_core_read(&up, sizeof up, &tp->numbers[level & 31]);
  t.exit_code = (int)up.nr;
  t.h.size = sizeof t;
  emit(&t, sizeof t);
  return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(mw_exit, struct task_struct *p) {
  u32 tgid = BPF_CORE_READ(p, tgid), pid = BPF_CORE_READ(p, pid);
  /* A thread killed inside a reported syscall leaves its arguments: looked up first (lock-free),
     so the usual exit, outside one, takes no bucket lock. */
  if (bpf_map_lookup_elem(&stash, &pid)) bpf_map_delete_elem(&stash, &pid);
  if (tgid != pid) return 0; /* a thread */
  fpu_forget(tgid);
  struct mw_task t = {};
  fill_hdr(&t.h, task_kind(MW_EV_EXIT), p);
  t.ppid = BPF_CORE_READ(p, real_parent, tgid);
  t.exit_code = BPF_CORE_READ(p, exit_code);
  t.h.size = sizeof t;
  emit(&t, sizeof t);
  return 0;
}

/* ---- syscalls ---- */

/*
 * Whether an open for reading only, of the user path `upath`, is reported. Under MW_READ_PREFIX one
 * by a process the rules name is (read_comms); so is a path whose text starts with a prefix the
 * rules name (read_prefixes); so is one whose text cannot be judged
 * (relative, or with "/./", "/../" or "//" in it, which Falco's fd.name normalizes away).
 */
static __always_inline int read_wanted(const char *upath) {
  u32 zero = 0;
  u32 *pol = bpf_map_lookup_elem(&read_policy, &zero);
  u32 p = pol ? *pol : MW_READ_NONE;
  if (p == MW_READ_ALL) return 1;
  if (p != MW_READ_PREFIX) return 0;
  struct comm_key ck = {};
  bpf_get_current_comm(ck.comm, sizeof ck.comm);
  if (bpf_map_lookup_elem(&read_comms, &ck)) return 1;
  struct prefix_key *k = bpf_map_lookup_elem(&prefix_scratch, &zero);
  if (!k) return 1;
  long n = bpf_probe_read_user_str(k->data, MW_PREFIX_MAX, upath);
  if (n <= 1) return 0; /* unreadable or empty: the open fails */
  if (k->data[0] != '/') return 1;
  k->pad[0] = k->pad[1] = 0;
  k->prefixlen = (u32)(n - 1) * 8;
  if (bpf_map_lookup_elem(&read_prefixes, k)) return 1;
  for (int i = 1; i < MW_PREFIX_MAX; i++) {
    if (i >= n - 1) break;
    u8 c = k->data[i];
    if (k->data[i - 1] != '/') continue;
    if (c == '/') return 1;
    if (c != '.') continue;
    u8 c1 = k->data[i + 1];
    if (c1 == 0 || c1 == '/') return 1;
    if (c1 == '.' && (k->data[i + 2] == 0 || k->data[i + 2] == '/')) return 1;
  }
  return 0;
}

static __always_inline u64 arg_at(const struct stash *st, u32 i) {
  switch (i) {
  case 0: return st->args[0];
  case 1: return st->args[1];
  case 2: return st->args[2];
  case 3: return st->args[3];
  case 4: return st->args[4];
  default: return st->args[5];
  }
}

SEC("tp_btf/sys_enter")
int BPF_PROG(mw_sys_enter, struct pt_regs *regs, long id) {
  if (id < 0 || id >= NR_MAX) return 0;
  u32 fl = sys_flag(id);
  if (!fl) return 0;
  u64 pt = bpf_get_current_pid_tgid();
  if ((pt >> 32) == cfg.self_tgid) return 0;
  struct stash st = {};
  st.nr = id;
  st.args[0] = BPF_CORE_READ(regs, di);
  st.args[1] = BPF_CORE_READ(regs, si);
  st.args[2] = BPF_CORE_READ(regs, dx);
  st.args[3] = BPF_CORE_READ(regs, r10);
  st.args[4] = BPF_CORE_READ(regs, r8);
  st.args[5] = BPF_CORE_READ(regs, r9);

  if (fl & (MW_SYS_SOCK_SEND | MW_SYS_SOCK_DNS)) {
    struct sock *sk = file_sock(fd_file(st.args[0]));
    if (!sk) return 0;
    u16 fam = BPF_CORE_READ(sk, __sk_common.skc_family);
    if (fam != AF_INET && fam != AF_INET6) return 0;
    u16 proto = BPF_CORE_READ(sk, sk_protocol);
    if ((fl & MW_SYS_SOCK_SEND) && proto == IPPROTO_UDP) {
      /* A DNS query: user space matches each answer to the query its socket sent. */
      if (!udp_to_dns(sk, id, st.args)) return 0;
      st.dns = 1;
    } else if (fl & MW_SYS_SOCK_SEND) {
      if (proto != IPPROTO_TCP || peer_is_local(sk)) return 0;
      u64 key = (u64)sk;
      u32 *done = bpf_map_lookup_elem(&sent, &key);
      if (done && *done >= MW_BUF_MAX) return 0;
    } else {
      if (proto != IPPROTO_UDP) return 0;
      u16 dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
      /* Connected to something else; or unconnected, where only recvfrom/recvmsg name the peer. */
      if (dport && dport != 53) return 0;
      if (!dport && id != NR_recvfrom && id != NR_recvmsg) return 0;
    }
    st.sk = (u64)sk;
  }
  if ((fl & MW_SYS_OPEN) && !cfg.open_read) {
    u64 flags = 0;
    if (id == NR_open) flags = st.args[1];
    else if (id == NR_openat) flags = st.args[2];
    else if (id == NR_openat2) bpf_probe_read_user(&flags, sizeof flags, (void *)st.args[2]);
    else flags = O_CREAT | 1; /* creat */
    if (!(flags & (O_ACCMODE | O_CREAT | O_TRUNC | O_TMPFILE)) && !read_wanted((const char *)(id == NR_open ? st.args[0] : st.args[1])))
      return 0;
  }
  u32 tid = (u32)pt;
  bpf_map_update_elem(&stash, &tid, &st, BPF_ANY);
  return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(mw_sys_exit, struct pt_regs *regs, long ret) {
  u64 nr_now = regs->orig_ax; /* the call this exit ends */
  if (nr_now < NR_MAX) {
    u32 k = nr_now;
    u32 *stashed = bpf_map_lookup_elem(&sys_stashed, &k);
    if (!stashed || !*stashed) return 0;
  }
  u32 tid = (u32)bpf_get_current_pid_tgid();
  struct stash *sp = bpf_map_lookup_elem(&stash, &tid);
  if (!sp) return 0;
  struct stash st = *sp;
  bpf_map_delete_elem(&stash, &tid);
  u32 nr = st.nr;
  /* Arguments of another call (a tracer changed the number under it): not this one's. */
  if (nr != nr_now) return 0;
  if (nr >= NR_MAX || (sys_flag(nr) & MW_SYS_EXEC)) return 0; /* an exec that failed */

  struct scratch *s = get_scratch();
  if (!s) return 0;
  struct mw_sys *e = (void *)s->b;
  u8 *data = s->b + sizeof(struct mw_sys);
  __builtin_memset(e, 0, sizeof *e);
  struct task_struct *task = bpf_get_current_task_btf();
  fill_hdr(&e->h, MW_EV_SYSCALL, task);
  e->ret = ret;
  e->nr = nr;
  for (int i = 0; i < 6; i++) e->args[i] = st.args[i];
  u32 pos = 0;
  const char *upath = NULL;
  struct file *file = NULL;
  int cwd = 0; /* the path region takes the working directory (MW_DESC_CWD) */

  switch (nr) {
  case NR_open:
  case NR_creat:
  case NR_chmod:
  case NR_memfd_create:
    upath = (const char *)st.args[0];
    break;
  case NR_openat:
  case NR_fchmodat:
  case NR_fchmodat2:
    upath = (const char *)st.args[1];
    break;
  case NR_openat2: {
    u64 how[2] = {};
    bpf_probe_read_user(&how, sizeof how, (void *)st.args[2]);
    e->args[2] = how[0]; /* flags */
    e->args[3] = how[1]; /* mode */
    upath = (const char *)st.args[1];
    break;
  }
  case NR_fchmod:
    file = fd_file(st.args[0]);
    break;
  case NR_connect: {
    struct sock *sk = file_sock(fd_file(st.args[0]));
    if (!sk) return 0;
    u16 fam = BPF_CORE_READ(sk, __sk_common.skc_family);
    if (fam != AF_INET && fam != AF_INET6) return 0;
    sock_tuple(sk, e);
    /* A refused connect may have cleared the peer: the caller's address says where it went. */
    if (ret < 0 && ret != -EINPROGRESS) e->dport = user_sockaddr((void *)st.args[1], e);
    break;
  }
  case NR_write:
  case NR_sendto:
  case NR_writev:
  case NR_sendmsg:
  case NR_sendmmsg: {
    if (ret <= 0 || !st.sk) return 0;
    struct sock *sk = (void *)st.sk;
    sock_tuple(sk, e);
    u64 key = st.sk;
    u32 before = 0;
    if (st.dns) {
      /* A DNS query: every one, whole (to MW_DNS_MAX), sendmmsg's first two messages one after
         the other (glibc sends the A and AAAA questions together). */
      if (!e->dport) e->dport = user_sockaddr(send_sockaddr(nr, st.args), e);
      if (e->dport != 53) return 0;
    } else {
      /* TCP: the first MW_BUF_MAX bytes each socket sends, over however many sends. */
      u32 *done = bpf_map_lookup_elem(&sent, &key);
      before = done ? *done : 0;
      if (before >= MW_BUF_MAX) return 0;
    }
    const u32 max = st.dns ? MW_DNS_MAX : MW_BUF_MAX;
    u64 sent_bytes = (u64)ret, n;
    if (nr == NR_write || nr == NR_sendto) {
      n = put_buf(data, (void *)st.args[1], sent_bytes, max);
    } else if (nr == NR_writev) {
      n = put_iov(data, 0, (void *)st.args[1], st.args[2], sent_bytes, max);
    } else {
      /* sendmsg's msghdr; or sendmmsg's first mmsghdr, whose len is what it sent (ret counts
         messages). Unreadable: nothing captured. */
      struct {
        struct user_msghdr m;
        u32 len;
        u32 pad;
      } mm[2] = {};
      if (nr == NR_sendmmsg) {
        bpf_probe_read_user(&mm[0], sizeof mm[0], (void *)st.args[1]);
        sent_bytes = mm[0].len;
      } else {
        bpf_probe_read_user(&mm[0].m, sizeof mm[0].m, (void *)st.args[1]);
      }
      n = put_iov(data, 0, mm[0].m.msg_iov, mm[0].m.msg_iovlen, sent_bytes, max);
      if (st.dns && nr == NR_sendmmsg && ret > 1 && n < MW_DNS_MAX && bpf_probe_read_user(&mm[1], sizeof mm[1], (void *)(st.args[1] + sizeof mm[0])) == 0)
        n += put_iov(data, n, mm[1].m.msg_iov, mm[1].m.msg_iovlen, mm[1].len, MW_DNS_MAX);
    }
    e->buf_len = n;
    pos = n;
    if (!st.dns) {
      u32 now = before + (u32)(sent_bytes > 65535 ? 65535 : sent_bytes);
      bpf_map_update_elem(&sent, &key, &now, BPF_ANY);
    }
    break;
  }
  case NR_recvfrom:
  case NR_recvmsg: {
    if (ret <= 0 || !st.sk) return 0;
    struct sock *sk = (void *)st.sk;
    sock_tuple(sk, e);
    const void *buf = (void *)st.args[1];
    const struct iovec *iov = NULL;
    u64 cnt = 0;
    if (nr == NR_recvmsg) {
      struct user_msghdr m = {};
      bpf_probe_read_user(&m, sizeof m, (void *)st.args[1]);
      iov = m.msg_iov;
      cnt = m.msg_iovlen;
      if (!e->dport) e->dport = user_sockaddr(m.msg_name, e);
    } else if (!e->dport) {
      e->dport = user_sockaddr((void *)st.args[4], e);
    }
    if (e->dport != 53) return 0;
    u64 n = (u64)ret;
    if (iov) {
      n = put_iov(data, 0, iov, cnt, n, MW_DNS_MAX);
    } else {
      n = put_buf(data, buf, n, MW_DNS_MAX);
    }
    e->buf_len = n;
    pos = n;
    break;
  }
  case NR_setuid:
  case NR_setresuid:
    e->ruid = BPF_CORE_READ(task, cred, uid.val);
    e->euid = BPF_CORE_READ(task, cred, euid.val);
    break;
  default: {
    /* The generic path: the user strings and the file descriptor its descriptor names. */
    if (!(sys_flag(nr) & MW_SYS_GENERIC)) break;
    u32 *dp = bpf_map_lookup_elem(&sys_desc, &nr);
    u32 d = dp ? *dp : 0;
    for (int i = 0; i < 6; i++) {
      if (!(d & (1u << i))) continue;
      long r = bpf_probe_read_user_str(data + (pos & DATA_MASK), MW_STR_MAX, (const char *)arg_at(&st, i));
      if (r <= 0) { /* unreadable: an empty string keeps the others in their places */
        data[pos & DATA_MASK] = 0;
        r = 1;
      }
      /* Masked at once: every path through the loop leaves pos in the same range, so the verifier
         prunes them instead of walking 2^6 of them into put_path. */
      pos = (pos + (u32)r) & DATA_MASK;
    }
    e->str_len = pos;
    cwd = (d & MW_DESC_CWD) && pos > 1 && data[0] != '/';
    u32 sel = (d >> MW_DESC_FD_SHIFT) & 7;
    if (sel) {
      long long fd = sel == MW_DESC_FD_RET ? ret : (long long)(int)arg_at(&st, sel - 1);
      struct file *f = fd >= 0 ? fd_file(fd) : NULL;
      struct sock *sk = file_sock(f);
      if (sk) sock_tuple(sk, e);
      else file = f;
    }
    break;
  }
  }

  if (upath) {
    long r = bpf_probe_read_user_str(data, MW_STR_MAX, upath);
    if (r > 0) {
      e->str_len = r;
      pos = r;
    }
  }
  /* The file an open made, or the one fchmod changed: its full path, device and inode. */
  if ((nr == NR_open || nr == NR_openat || nr == NR_openat2 || nr == NR_creat) && ret >= 0) file = fd_file(ret);
  struct dentry *pd = NULL;
  struct vfsmount *pm = NULL;
  if (file) {
    pd = BPF_CORE_READ(file, f_path.dentry);
    pm = BPF_CORE_READ(file, f_path.mnt);
    e->ino = BPF_CORE_READ(file, f_inode, i_ino);
    e->dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
  } else if (cwd) {
    struct fs_struct *fs = BPF_CORE_READ(task, fs);
    pd = BPF_CORE_READ(fs, pwd.dentry);
    pm = BPF_CORE_READ(fs, pwd.mnt);
  }
  if (pd) {
    u32 pl = put_path(data, pos, pd, pm);
    e->path_len = pl;
    pos += pl;
  }
  e->h.size = sizeof(struct mw_sys) + (pos & DATA_MASK);
  emit(e, sizeof(struct mw_sys) + (pos & DATA_MASK));
  return 0;
}

/* ---- RandomX: the rounding mode a task leaves the FPU in ---- */

/* Kernels before 5.16 kept the register image inline in struct fpu. */
struct fpu___old {
  union fpregs_state state;
} __attribute__((preserve_access_index));

SEC("tp_btf/x86_fpu_regs_deactivated")
int BPF_PROG(mw_fpu, struct fpu *fpu) {
  if (!cfg.fpu) return 0;
  /* Every switch-out of every user thread comes here: plain loads through the BTF-typed
     argument (no helper calls) and, for a process nobody follows, nothing else. */
  u32 mxcsr;
  if (bpf_core_field_exists(fpu->fpstate))
    mxcsr = fpu->fpstate->regs.xsave.i387.mxcsr;
  else
    mxcsr = BPF_CORE_READ((struct fpu___old *)fpu, state.xsave.i387.mxcsr);
  u32 mode = (mxcsr >> 13) & 3; /* RC: 0 nearest, 1 down, 2 up, 3 toward zero */
  if (!mode && !fpu_followed) return 0;
  struct task_struct *task = bpf_get_current_task_btf();
  u32 tgid = task->tgid;
  if (!tgid) return 0;
  struct fpu_stat *st = bpf_map_lookup_elem(&fpu_stats, &tgid);
  if (!st && !mode) return 0;
  u64 start = task->group_leader->start_boottime;
  u64 now = bpf_ktime_get_boot_ns();
  if (!st || st->start != start) {
    /* Only processes seen away from round-to-nearest are followed (a reused pid starts afresh). */
    if (!mode) {
      fpu_forget(tgid);
      return 0;
    }
    struct fpu_stat n = {.start = start, .first = now, .count = 1, .seen = 1, .last_mode = mode};
    n.modes[mode] = 1;
    if (bpf_map_update_elem(&fpu_stats, &tgid, &n, st ? BPF_EXIST : BPF_NOEXIST) == 0 && !st) __sync_fetch_and_add(&fpu_followed, 1);
    return 0;
  }
  /* Threads of one process race here on several CPUs: the counters stay exact (atomic adds); the
     last mode is whichever thread wrote it last, which is all "changes" needs. */
  if (mode != st->last_mode) __sync_fetch_and_add(&st->changes, 1);
  st->last_mode = mode;
  __sync_fetch_and_add(&st->seen, 1);
  __sync_fetch_and_add(&st->modes[mode & 3], 1);
  if (!mode) return 0;
  u64 c = __sync_fetch_and_add(&st->count, 1) + 1;
  if (c < cfg.fpu_min || now - st->last_emit < 1000000000ULL) return 0;
  st->last_emit = now;
  struct mw_fpu r = {};
  fill_hdr(&r.h, MW_EV_FPU, task);
  r.h.size = sizeof r;
  r.count = c;
  r.changes = st->changes;
  r.first = st->first;
  r.seen = st->seen;
  for (int i = 0; i < 4; i++) r.modes[i] = st->modes[i];
  r.runtime = task->se.sum_exec_runtime;
  r.run_delay = task->sched_info.run_delay;
  r.tstart = task->start_boottime;
  r.cpu = bpf_get_smp_processor_id();
  emit(&r, sizeof r);
  return 0;
}
