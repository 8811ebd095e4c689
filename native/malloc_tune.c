/*
 * glibc malloc settings for the agent's RSS (issue 16: ≤ 100 MB).
 *
 * glibc gives each thread that mallocs its own arena (up to 8 per core). V8's worker threads (GC
 * helpers, concurrent compilers) each malloc a few MB of short-lived memory in bursts (an exec
 * storm), free it, and their arenas keep most of it resident: after the bench's storms four such
 * arenas held 11–13 MB, of which under 0.3 MB was in use (malloc_stats), and malloc_trim gave
 * back little of it (and trimming costs the exec → alert latency: see src/platform/malloc-arenas.ts). With one arena for the whole process the same freed memory is reused by
 * the next burst instead: 8–10 MB less RSS after the storms (measured side by side).
 *
 * Set at run time rather than with MALLOC_ARENA_MAX, which only the environment of a new process
 * can carry: `node dist/src/cli/main.js run` must get it with no wrapper. Threads that already
 * have an arena keep it; later threads, and threads that malloc for the first time, share.
 *
 * JS API (registered on the same addon as the proc connector, by mw_malloc_register)
 *   mallocArenaMax(n) -> bool   mallopt(M_ARENA_MAX, n); false where the C library is not glibc
 */
#define _GNU_SOURCE
#define NAPI_VERSION 6
#include <node_api.h>

#include <stdbool.h>
#include <stdint.h>

#ifdef __linux__
#include <malloc.h>
#endif

void mw_malloc_register(napi_env env, napi_value exports);

static napi_value js_malloc_arena_max(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], res;
  int32_t n = 0;
  bool ok = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 1 &&
      napi_get_value_int32(env, argv[0], &n) == napi_ok && n >= 1 && n <= 1024) {
#ifdef M_ARENA_MAX
    ok = mallopt(M_ARENA_MAX, n) == 1;
#endif
  }
  napi_get_boolean(env, ok, &res);
  return res;
}

void mw_malloc_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"mallocArenaMax", NULL, js_malloc_arena_max, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
