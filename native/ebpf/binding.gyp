{
  "targets": [
    {
      "target_name": "minewatch_ebpf",
      "sources": ["addon.c"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers", "-O2"],
      "libraries": ["-lbpf", "-lpthread"]
    }
  ]
}
