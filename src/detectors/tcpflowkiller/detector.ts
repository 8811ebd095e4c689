/**
 * The tcpflowkiller as a Detector: every outbound connect through the flow killer, whose verdict
 * (a banned address, or a scan) becomes a kill request. It watches its ban files while it runs.
 */
import type { Event } from '../../events.js';
import type { DetectorContext } from '../module.js';
import type { Detector, DetectorAnswer, DetectorStats } from '../types.js';
import type { TcpflowkillerSettings } from './config.js';
import { TcpFlowKiller } from './flow-killer.js';

export class TcpFlowKillerDetector implements Detector {
  readonly name = 'tcpflowkiller';
  readonly killer: TcpFlowKiller;

  constructor(s: TcpflowkillerSettings, ctx: Pick<DetectorContext, 'log'>) {
    this.killer = new TcpFlowKiller({
      ...s.config.FlowKiller,
      exempt_cidrs: s.exempt_cidrs,
      // Detectors, once enabled, act (as cryptnono's do); their safety rules are the response stage's.
      mode: 'enforce',
      log: (level, msg, fields) => ctx.log[level](fields ?? {}, msg),
    });
    this.killer.start();
  }

  onEvent(ev: Event): DetectorAnswer[] | undefined {
    if (ev.type !== 'connect') return undefined;
    const request = this.killer.decide(ev);
    return request ? [{ request }] : undefined;
  }

  stats(): DetectorStats {
    const s = this.killer.stats;
    return { ...s, requested: { ...s.requested }, outcomes: { ...s.outcomes } };
  }

  close(): void {
    this.killer.close();
  }
}
