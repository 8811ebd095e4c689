/**
 * One environment array for an exec'd process and the image it replaced, when the two are the same.
 *
 * Most execs pass the environment on unchanged (a shell, a make, a CI runner starting commands),
 * and each exec'd entry kept its own copy: up to 4 KiB of strings per process from the eBPF
 * record, the whole environ from /proc. Under an exec storm thousands of exited entries wait out
 * their grace with identical copies (issue 16: RSS ≤ 100 MB). The forked entry (`prior`) holds
 * its parent's array, so an equal environment takes that array and the new one dies young.
 * Comparing costs a few string compares, less than keeping and later collecting the copy.
 * Nothing mutates a ProcessInfo's env once built, so sharing it is safe.
 */
export function sharedEnv(env: string[], prior: readonly string[] | undefined): string[] {
  if (prior === undefined || prior === env || prior.length !== env.length) return env;
  for (let i = 0; i < env.length; i++) if (env[i] !== prior[i]) return env;
  return prior as string[];
}
