/*
 * Process file descriptors for the response actions (src/response/kill.ts): a pidfd names one
 * process for as long as the fd is open, so a signal sent through it can never reach another
 * process that was later given the same pid.
 *
 * The syscalls are made by number through syscall(2): glibc wrappers for them arrived only in
 * 2.36, and older headers may not even name them. The numbers are the same on every architecture
 * that uses the unified syscall table (x86_64, arm64, riscv, …; i386 and arm too, since 5.1).
 *
 * JS API (registered on the same addon as the proc connector, by mw_pidfd_register)
 *   pidfdOpen(pid) -> fd                 pidfd_open(pid, 0); the fd is close-on-exec
 *   pidfdSendSignal(fd, signal)          pidfd_send_signal(fd, signal, NULL, 0); signal 0 probes
 *   closeFd(fd)                          close(fd)
 * Each throws an Error carrying Node's usual fields on failure: code ("ESRCH", "ENOSYS", "EPERM",
 * "EINVAL", "EBADF", "EMFILE", …), errno (negative, as Node's own fs errors), syscall.
 *   ESRCH   pidfdOpen: no such process; pidfdSendSignal: the process has exited (even if its pid
 *           now belongs to someone else)
 *   EINVAL  pidfdOpen: the pid is a thread, not a thread group leader
 *   ENOSYS  the kernel is older than 5.3 (pidfd_open) / 5.1 (pidfd_send_signal)
 */
#define _GNU_SOURCE
#define NAPI_VERSION 6
#include <node_api.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __linux__
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#endif

void mw_pidfd_register(napi_env env, napi_value exports);

static const char *errno_name(int err) {
  switch (err) {
  case EPERM: return "EPERM";
  case ESRCH: return "ESRCH";
  case EINTR: return "EINTR";
  case EBADF: return "EBADF";
  case EACCES: return "EACCES";
  case EINVAL: return "EINVAL";
  case EMFILE: return "EMFILE";
  case ENFILE: return "ENFILE";
  case ENOMEM: return "ENOMEM";
  case ENODEV: return "ENODEV";
  case ENOSYS: return "ENOSYS";
  case EIO: return "EIO";
  default: return NULL;
  }
}

/* Throw an Error with code, errno and syscall set, as Node's own system errors have them. */
static napi_value throw_sys(napi_env env, const char *syscall_name, const char *what, int err) {
  char msg[256], codebuf[24];
  const char *code = errno_name(err);
  if (!code) {
    snprintf(codebuf, sizeof codebuf, "ERRNO_%d", err);
    code = codebuf;
  }
  snprintf(msg, sizeof msg, "%s(%s): %s", syscall_name, what, strerror(err));
  napi_value jcode, jmsg, error, v;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg);
  napi_create_error(env, jcode, jmsg, &error);
  napi_create_int32(env, -err, &v);
  napi_set_named_property(env, error, "errno", v);
  napi_create_string_utf8(env, syscall_name, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, error, "syscall", v);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

/* The integer argument at index i, required to be a whole number within [lo, hi]. */
static int get_int_arg(napi_env env, napi_callback_info info, size_t i, int64_t lo, int64_t hi, int64_t *out) {
  size_t argc = 2;
  napi_value argv[2];
  napi_valuetype t;
  double d;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc <= i) return 0;
  if (napi_typeof(env, argv[i], &t) != napi_ok || t != napi_number) return 0;
  if (napi_get_value_double(env, argv[i], &d) != napi_ok) return 0;
  if (d != d || d < (double)lo || d > (double)hi || d != (double)(int64_t)d) return 0;
  *out = (int64_t)d;
  return 1;
}

#ifdef __linux__

static napi_value js_pidfd_open(napi_env env, napi_callback_info info) {
  int64_t pid;
  if (!get_int_arg(env, info, 0, 1, INT32_MAX, &pid)) return throw_type(env, "pidfdOpen(pid): pid must be a positive integer");
  char what[32];
  snprintf(what, sizeof what, "%lld", (long long)pid);
  long fd;
  do fd = syscall(SYS_pidfd_open, (pid_t)pid, 0u); while (fd < 0 && errno == EINTR);
  if (fd < 0) return throw_sys(env, "pidfd_open", what, errno);
  napi_value r;
  napi_create_int32(env, (int32_t)fd, &r);
  return r;
}

static napi_value js_pidfd_send_signal(napi_env env, napi_callback_info info) {
  int64_t fd, sig;
  if (!get_int_arg(env, info, 0, 0, INT32_MAX, &fd)) return throw_type(env, "pidfdSendSignal(fd, signal): fd must be a non-negative integer");
  if (!get_int_arg(env, info, 1, 0, 64, &sig)) return throw_type(env, "pidfdSendSignal(fd, signal): signal must be an integer from 0 to 64");
  char what[48];
  snprintf(what, sizeof what, "fd %lld, signal %lld", (long long)fd, (long long)sig);
  long r;
  do r = syscall(SYS_pidfd_send_signal, (int)fd, (int)sig, NULL, 0u); while (r < 0 && errno == EINTR);
  if (r < 0) return throw_sys(env, "pidfd_send_signal", what, errno);
  return NULL;
}

static napi_value js_close_fd(napi_env env, napi_callback_info info) {
  int64_t fd;
  if (!get_int_arg(env, info, 0, 0, INT32_MAX, &fd)) return throw_type(env, "closeFd(fd): fd must be a non-negative integer");
  /* No retry on EINTR: on Linux the fd is released even then, and a retry could close another. */
  if (close((int)fd) != 0 && errno != EINTR) {
    char what[24];
    snprintf(what, sizeof what, "%lld", (long long)fd);
    return throw_sys(env, "close", what, errno);
  }
  return NULL;
}

#else /* not Linux: the functions exist and say why they cannot work */

static napi_value js_pidfd_open(napi_env env, napi_callback_info info) {
  (void)info;
  return throw_sys(env, "pidfd_open", "unsupported", ENOSYS);
}
static napi_value js_pidfd_send_signal(napi_env env, napi_callback_info info) {
  (void)info;
  return throw_sys(env, "pidfd_send_signal", "unsupported", ENOSYS);
}
static napi_value js_close_fd(napi_env env, napi_callback_info info) {
  (void)info;
  return throw_sys(env, "close", "unsupported", ENOSYS);
}

#endif

/* Called from the addon's init (proc_connector.c). */
void mw_pidfd_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"pidfdOpen", NULL, js_pidfd_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pidfdSendSignal", NULL, js_pidfd_send_signal, NULL, NULL, NULL, napi_enumerable, NULL},
      {"closeFd", NULL, js_close_fd, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
