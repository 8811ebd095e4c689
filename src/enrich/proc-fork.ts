/**
 * The wait before the process table reads a forked child from /proc (proc connector and poller:
 * the kernel did not describe it).
 *
 * A fork read gives the child's session, tty, process group, pid in its namespace and exact start
 * time. Most children exec or exit a fraction of a millisecond after the fork, and then the read
 * is wasted: the exec reads the process whole, and an exited one has nothing left to say. The
 * proc connector hands the fork over often before the exec's notice has crossed from its reader
 * thread. So the table enters the child at once as its parent's image and reads it this long
 * later (one timer shared by every fork in the window), only if it has neither exec'd nor exited
 * by then: a stat and a status read (two of the costliest /proc files) spared for most forks
 * (issue 16). Nothing waits for that read: the child's exec and exit apply as they come.
 */
export const FORK_READ_DELAY_MS = 2;

let pending: Promise<void> | undefined;

/** Resolves FORK_READ_DELAY_MS after the first caller of the window; every caller shares it. */
export function forkSettled(): Promise<void> {
  pending ??= new Promise<void>((resolve) => {
    setTimeout(() => {
      pending = undefined;
      resolve();
    }, FORK_READ_DELAY_MS);
  });
  return pending;
}
