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
  // The same two arrays as the last call (a storm of commands from one shell: the decoder's one
  // array for the environment, the shell's for the forked image): the same answer, without
  // comparing every string again. Neither array changes once built, so the answer still holds.
  const l = last;
  if (env === l.env && prior === l.prior) return l.out;
  let out = prior as string[];
  for (let i = 0; i < env.length; i++) {
    if (env[i] !== prior[i]) {
      out = env;
      break;
    }
  }
  last = { env, prior, out };
  return out;
}

let last: { env: readonly string[]; prior: readonly string[]; out: string[] } = { env: [], prior: [], out: [] };
