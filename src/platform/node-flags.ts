/**
 * Whether the user gave node a flag (on its command line or in NODE_OPTIONS): settings the agent
 * makes at run time (young-generation.ts, memory-reducer.ts) step aside for the user's own.
 */

/** True when any flag given to node matches `pattern` (underscores read as dashes, as node does). */
export function userGaveNodeFlag(pattern: RegExp): boolean {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  return given.some((a) => pattern.test(a.replace(/_/g, '-')));
}
