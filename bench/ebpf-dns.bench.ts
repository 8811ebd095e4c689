/**
 * What the eBPF driver's DNS query capture costs a sending program (root and BTF only; skipped with
 * a message otherwise). A program the bench compiles, in a network namespace of its own, times
 * SENDS sendto() calls of a 30-byte DNS query on an unconnected UDP socket: to port 53 (each one is
 * captured and goes up the ring buffer to the DnsLearner) and to port 9 (checked in the kernel and
 * dropped there). Baseline: the same program with no driver loaded, rounds alternating, in this
 * process. Median of 5 rounds, spread min–max. (Port 9's ratio is the whole driver's cost on a
 * syscall it watches: sys_enter/sys_exit run for every syscall.)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DnsCache } from '../src/enrich/dns.js';
import { EbpfSource } from '../src/sources/ebpf/index.js';
import { loadEbpfAddon } from '../src/sources/ebpf/addon.js';
import { compileC } from '../test/helpers/agent-run.js';
import { fmt, median } from './lib.js';

const SENDS = 50_000;
const ROUNDS = 5;

const SENDER_C = String.raw`
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
int main(int argc, char **argv) {
  int n = atoi(argv[1]), port = atoi(argv[2]);
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  to.sin_addr.s_addr = htonl(0x7f000001);
  unsigned char q[] = {0x42, 0x42, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4, 'p', 'o', 'o', 'l', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1};
  double t = now();
  for (int i = 0; i < n; i++) { q[1] = i; sendto(s, q, sizeof q, 0, (void *)&to, sizeof to); }
  printf("%.1f\n", (now() - t) / n);
  return 0;
}`;

function range(xs: number[]): string {
  return `${fmt(median(xs), 0)} ns (${fmt(Math.min(...xs), 0)}–${fmt(Math.max(...xs), 0)})`;
}

export async function ebpfDnsCaptureBench(): Promise<void> {
  const addon = loadEbpfAddon();
  if (process.getuid?.() !== 0 || 'error' in addon || !existsSync('/sys/kernel/btf/vmlinux')) {
    console.log('SKIPPED: needs root, BTF and the built eBPF driver');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'mw-bench-dns-'));
  try {
    writeFileSync(join(dir, 'sender.c'), SENDER_C);
    const bin = join(dir, 'sender');
    compileC(join(dir, 'sender.c'), bin);
    const send = (port: number): number => Number(execFileSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec "$0" "$1" "$2"', bin, String(SENDS), String(port)], { encoding: 'utf8' }).trim());
    const res = { base53: [] as number[], base9: [] as number[], drv53: [] as number[], drv9: [] as number[] };
    const dns = new DnsCache();
    const src = new EbpfSource({ lookup: () => undefined, containerOf: () => undefined, dns });
    let events = 0;
    for (let r = 0; r < ROUNDS; r++) {
      res.base53.push(send(53));
      res.base9.push(send(9));
      src.onEvents(() => events++);
      await src.start(() => {});
      res.drv53.push(send(53));
      res.drv9.push(send(9));
      await new Promise((ok) => setTimeout(ok, 200));
      await src.stop();
    }
    const m = (xs: number[]): number => median(xs);
    console.log(`sendto to port 53 (captured): ${range(res.drv53)} per call; baseline without the driver: ${range(res.base53)}; ratio ${fmt(m(res.drv53) / m(res.base53), 2)}×`);
    console.log(`sendto to port 9 (filtered in the kernel): ${range(res.drv9)} per call; baseline without the driver: ${range(res.base9)}; ratio ${fmt(m(res.drv9) / m(res.base9), 2)}×`);
    console.log(`queries the learner saw: ${fmt(src.dnsLearner!.counts.queries)} of ${fmt(SENDS * ROUNDS)} sent to port 53; events ${fmt(events)} (sendto events of every program while loaded); drops ${fmt(src.drops)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
