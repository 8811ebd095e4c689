/**
 * The RandomX (monero) detector in the agent: whether its tracepoint is attached, and what the
 * agent says about it at start. cryptnono's kill is detectors/monero's.
 *
 * The alert is on wherever the eBPF driver runs: the tracepoint is attached whenever a loaded rule
 * reads mw_fpu_rounding events (the default rules do) or `detectors.monero.enabled` is true.
 * Killing is opt-in: `detectors.monero.enabled: true` kills the process the rule RandomX
 * Floating-Point Rounding Pattern names, as cryptnono's monero detector kills what it catches
 * (outside the response section's dry run, like the other detectors); or a response rule.
 */
import { RANDOMX_RULE } from '../detectors/monero/index.js';
import { RANDOMX_EVENT } from '../sources/ebpf/randomx.js';

export { RANDOMX_EVENT };

export interface RandomxState {
  attached: boolean;
  /** Why not, and what to do about it (when not attached). */
  why?: string;
  kill: 'on (detectors.monero.enabled)' | 'on (response rule, enforce)' | 'dry run (response rule)' | 'off';
}

/**
 * What the agent logs at start. `tracepoint` is the eBPF driver's word on it (on, off, missing),
 * undefined when another driver runs.
 */
export function randomxState(o: {
  driver: string;
  tracepoint: 'on' | 'off' | 'missing' | undefined;
  moneroEnabled: boolean;
  responseKill: 'enforce' | 'dryrun' | undefined;
}): RandomxState {
  const kill: RandomxState['kill'] = o.moneroEnabled ? 'on (detectors.monero.enabled)'
    : o.responseKill === 'enforce' ? 'on (response rule, enforce)'
      : o.responseKill === 'dryrun' ? 'dry run (response rule)' : 'off';
  if (o.tracepoint === 'on') return { attached: true, kill };
  let why: string;
  if (o.driver !== 'ebpf') {
    why = `the RandomX detector needs the eBPF driver (this agent runs the ${o.driver} driver; see the reason logged above for why eBPF is not running)`;
  } else if (o.tracepoint === 'missing') {
    why = 'this kernel has no x86_fpu:x86_fpu_regs_deactivated tracepoint (x86 only): no fix but another kernel';
  } else {
    why = `no loaded rule reads ${RANDOMX_EVENT} events (is "${RANDOMX_RULE}" disabled?) and detectors.monero.enabled is false: enable either and restart`;
  }
  return { attached: false, why, kill };
}
