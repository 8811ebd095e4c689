/**
 * tcpflowkiller (cryptnono's): kill a process that connects to a banned address, or to more
 * distinct destinations than a pool client would (a scan). `tcpflowkiller` is the registry's
 * entry: the config section and the Detector the agent runs.
 */
export { DEFAULT_EXEMPT_CIDRS, type FlowKillerSettings, type TcpflowkillerSettings } from './config.js';
export { TcpFlowKiller, type TcpFlowKillerOptions, type TcpFlowKillerStats, expandGlob, globBaseDir, parseBanList } from './flow-killer.js';
export { TcpFlowKillerDetector } from './detector.js';

import { defineDetector } from '../module.js';
import { tcpflowkillerConcatenates, tcpflowkillerInput, tcpflowkillerKnownKeys, tcpflowkillerWithDefaults } from './config.js';
import { TcpFlowKillerDetector } from './detector.js';

export const tcpflowkiller = defineDetector({
  name: 'tcpflowkiller',
  input: tcpflowkillerInput,
  withDefaults: tcpflowkillerWithDefaults,
  concatenates: tcpflowkillerConcatenates,
  knownKeys: tcpflowkillerKnownKeys,
  build: (s, ctx) => (s.enabled ? new TcpFlowKillerDetector(s, ctx) : undefined),
});
