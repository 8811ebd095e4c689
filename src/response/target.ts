/**
 * What an action request names: the process an event is about (with the identity the kill will
 * check) and its remote end. Detectors build requests with it; so does the dispatcher for rules.
 */
import type { SyscallEvent } from '../events.js';
import type { Target } from './types.js';

/** The process and destination an event is about, with the identity the kill will check. */
export function targetOf(ev: SyscallEvent): Target {
  const p = ev.proc;
  const remote = ev.fd?.sip !== undefined && !ev.fd.is_server ? { ip: ev.fd.sip, port: ev.fd.sport } : ev.fd?.cip !== undefined && ev.fd.is_server ? { ip: ev.fd.cip, port: ev.fd.cport } : undefined;
  return {
    pid: p.pid,
    startTs: p.start_ts,
    cmdline: [p.name, ...(p.args ?? [])].join(' '),
    exepath: p.exepath,
    container: ev.container,
    k8s: ev.k8s,
    remote,
  };
}
