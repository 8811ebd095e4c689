/*
 * Unmap the start-only pages of the agent's program files (issue 16: the agent's RSS ≤ 100 MB).
 *
 * The node binary is some 100 MB of code and read-only data, mapped private. What the agent's
 * start touches (the module loader, the compilers of its rules and config, the YAML and schema
 * libraries, V8's parser) stays mapped after it, and the kernel maps the neighbours of each page
 * it faults in too (fault-around, 64 KB): an agent after its start and an exec storm had 41 MB of
 * the node binary resident, most of it code the steady state never runs again.
 *
 * madvise(MADV_DONTNEED) on a private file mapping that was never written drops its page-table
 * entries and nothing else: the pages stay in the page cache (clean copies of the file, shared
 * with every other node process), and a page used again faults back in from there, a minor fault
 * of about a microsecond. So only what the agent goes on using is resident again, and the rest
 * is left to the kernel to reclaim under pressure like any other clean page cache.
 *
 * What is never touched: a writable mapping; a mapping with anonymous pages (a private page that
 * was written, such as a library's RELRO segment, relocated and then made read-only: dropping
 * it would bring back the file's unrelocated bytes); shared mappings; anything not backed by a
 * file (heap, stacks, V8's heap and code space, BPF maps, the ring buffer); and [vdso]/[vvar].
 *
 * Only the mappings of one file are dropped, the node binary as the agent calls it: the shared
 * libraries and addons are a few MB between them, and the SQLite addon's pages (used at the
 * start to open the store) would otherwise fault back in on the first alert's insert, where its
 * latency counts.
 *
 * JS API (registered on the same addon as the proc connector, by mw_resident_register)
 *   dropCleanFilePages(path) -> { mappings, bytes }   or throws with errno's code
 */
#define _GNU_SOURCE
#define NAPI_VERSION 6
#include <node_api.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

void mw_resident_register(napi_env env, napi_value exports);

typedef struct {
  uintptr_t start, end;
  char perms[8];
  unsigned long inode;
  int of_file; /* the mapping is of the file asked for */
  long rss_kb, anon_kb, locked_kb;
} vma_t;

/* Whether this mapping's resident pages may be dropped (see the file's comment). */
static int droppable(const vma_t *v) {
  return v->of_file && v->inode != 0 && v->perms[0] == 'r' && v->perms[1] == '-' && v->perms[3] == 'p' && v->anon_kb == 0 &&
         v->locked_kb == 0 && v->rss_kb > 0;
}

static napi_value js_drop_clean_file_pages(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char want[4096];
  size_t want_len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_string_utf8(env, argv[0], want, sizeof want, &want_len) != napi_ok || want_len == 0 || want[0] != '/') {
    napi_throw_type_error(env, "EINVAL", "dropCleanFilePages(path): the absolute path of the mapped file");
    return NULL;
  }
  FILE *f = fopen("/proc/self/smaps", "re");
  if (!f) {
    napi_throw_error(env, errno == ENOENT ? "ENOENT" : "EIO", "cannot read /proc/self/smaps");
    return NULL;
  }
  /* The droppable mappings first (a file has a handful), the madvise calls after: dropping pages
   * while reading smaps would change what the later lines say. */
  enum { MAX = 64 };
  vma_t vmas[MAX];
  int n = 0;
  char line[4096];
  vma_t cur = {0};
  while (fgets(line, sizeof line, f)) {
    uintptr_t s, e;
    char perms[8];
    unsigned long off, inode;
    char dev[32];
    int at = 0;
    if (sscanf(line, "%lx-%lx %7s %lx %31s %lu %n", &s, &e, perms, &off, dev, &inode, &at) == 6) {
      if (droppable(&cur) && n < MAX) vmas[n++] = cur;
      memset(&cur, 0, sizeof cur);
      cur.start = s;
      cur.end = e;
      memcpy(cur.perms, perms, sizeof cur.perms);
      cur.inode = inode;
      /* The path runs from `at` to the end of the line. */
      size_t len = strcspn(line + at, "\n");
      cur.of_file = len == want_len && memcmp(line + at, want, len) == 0;
      continue;
    }
    long kb;
    if (sscanf(line, "Rss: %ld kB", &kb) == 1) cur.rss_kb = kb;
    else if (sscanf(line, "Anonymous: %ld kB", &kb) == 1) cur.anon_kb = kb;
    else if (sscanf(line, "Locked: %ld kB", &kb) == 1) cur.locked_kb = kb;
  }
  if (droppable(&cur) && n < MAX) vmas[n++] = cur;
  fclose(f);
  double bytes = 0;
  uint32_t mappings = 0;
  for (int i = 0; i < n; i++) {
    if (madvise((void *)vmas[i].start, vmas[i].end - vmas[i].start, MADV_DONTNEED) == 0) {
      bytes += (double)vmas[i].rss_kb * 1024;
      mappings++;
    }
  }
  napi_value res, v;
  napi_create_object(env, &res);
  napi_create_uint32(env, mappings, &v);
  napi_set_named_property(env, res, "mappings", v);
  napi_create_double(env, bytes, &v);
  napi_set_named_property(env, res, "bytes", v);
  return res;
}

void mw_resident_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"dropCleanFilePages", NULL, js_drop_clean_file_pages, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
