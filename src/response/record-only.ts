/**
 * Actions that only record what they would do (`minewatch replay`): a recorded pid may belong to
 * a live process now, and a replay must never touch it, whatever the config's response.mode says.
 */
import type { ActionName, ActionRequest, ActionResult, ResponseAction } from './types.js';

const ALL: ActionName[] = ['kill', 'kill_container', 'block_destination', 'delete_pod', 'isolate_pod', 'quarantine_workload', 'suggest_revoke'];

export const RECORD_ONLY_REASON = 'replay: recorded only, nothing was run';

class RecordOnlyAction implements ResponseAction {
  constructor(readonly name: ActionName) {}

  run(req: ActionRequest): Promise<ActionResult> {
    return Promise.resolve({ request: req, outcome: 'dryrun', reason: RECORD_ONLY_REASON });
  }
}

/** Every action, each one only recording. */
export function recordOnlyActions(): Record<ActionName, ResponseAction> {
  return Object.fromEntries(ALL.map((n) => [n, new RecordOnlyAction(n)])) as Record<ActionName, ResponseAction>;
}
