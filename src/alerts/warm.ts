/**
 * A made-up match for warming the alert path at start (AlertPipeline.warm): never stored, never
 * sent. Its values only need the shapes a real exec alert has, so the same code runs on it.
 */
import type { Match } from '../engine/types.js';
import type { SyscallEvent } from '../events.js';

export function warmMatch(nowNs: bigint): Match {
  const event = {
    source: 'syscall', type: 'execve', ts: nowNs,
    proc: { pid: 1, ppid: 0, name: 'minewatch-warm', exe: '/minewatch-warm', exepath: '/minewatch-warm', args: ['--warm'], cmdline: 'minewatch-warm --warm', cwd: '/', uid: 0, user: 'root' },
    container: { id: 'host', name: 'host' },
  } as unknown as SyscallEvent;
  return {
    rule: 'minewatch warm-up', priority: 'NOTICE', source: 'syscall', tags: [], hostname: 'minewatch-warm',
    output: 'minewatch warm-up (proc.pid=1 proc.cmdline=minewatch-warm --warm)', outputFields: { 'proc.pid': 1, 'proc.cmdline': 'minewatch-warm --warm' },
    time: nowNs, event,
  } as Match;
}
