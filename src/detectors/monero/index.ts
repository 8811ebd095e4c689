/**
 * monero (cryptnono's): kill what the RandomX rule names. `monero` is the registry's entry: the
 * config section and the Detector the agent runs.
 */
export { type MoneroSettings } from './config.js';
export { MoneroDetector, MoneroKiller, RANDOMX_RULE } from './detector.js';

import { defineDetector } from '../module.js';
import { moneroInput, moneroKnownKeys, moneroWithDefaults } from './config.js';
import { MoneroDetector, MoneroKiller } from './detector.js';

export const monero = defineDetector({
  name: 'monero',
  input: moneroInput,
  withDefaults: moneroWithDefaults,
  knownKeys: moneroKnownKeys,
  // Always built: its matches tell the eBPF driver which processes are judged, kill or not.
  build: (s, ctx, previous) => {
    const kept = previous instanceof MoneroDetector ? previous.killer : undefined;
    return new MoneroDetector(s.enabled ? (kept ?? new MoneroKiller()) : undefined, ctx);
  },
});
