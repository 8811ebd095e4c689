{
  "targets": [
    {
      "target_name": "minewatch_native",
      "sources": ["native/proc_connector.c", "native/proc_exec_read.c", "native/exec_quiet.c", "native/pidfd.c", "native/malloc_tune.c", "native/resident_pages.c"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "libraries": ["-lpthread"]
    }
  ]
}
