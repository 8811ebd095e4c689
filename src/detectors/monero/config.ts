/**
 * `detectors.monero`: cryptnono's monero detector.
 *
 *   monero:
 *     enabled: false    # true: kill what the RandomX rule names (its alert is on regardless)
 */
import { z } from 'zod';
import { DEPLOYMENT_HINT, deploymentNotes, deploymentShape, type SectionNotes } from '../chart-keys.js';

export const moneroInput = z.strictObject({
  enabled: z.boolean().optional(),
  ...deploymentShape,
});
export type MoneroInput = z.infer<typeof moneroInput>;

export interface MoneroSettings {
  enabled: boolean;
}

export function moneroWithDefaults(input: MoneroInput | undefined, notes: SectionNotes): MoneroSettings {
  deploymentNotes(input, 'monero', notes);
  return { enabled: input?.enabled ?? false };
}

export function moneroKnownKeys(path: readonly string[]): string[] | undefined {
  return path.length === 0 ? ['enabled', DEPLOYMENT_HINT] : undefined;
}
