/**
 * The wait before the process table reads a forked child from /proc (proc connector and poller:
 * the kernel did not describe it).
 *
 * A fork read gives the child's session, tty, process group, pid in its namespace and exact start
 * time. Most children exec or exit a fraction of a millisecond after the fork, and then the read
 * is wasted: the exec reads the process whole, and an exited one has nothing left to say. The
 * proc connector hands the fork over often before the exec's notice has crossed from its reader
 * thread, so the table waits this long (one timer shared by every fork in the window) and reads
 * only a child that has neither exec'd nor exited by then. At 1,000 execs/s that spared a stat
 * and a status read (two of the costliest /proc files) per exec (issue 16). The child's own
 * notices wait behind its fork for at most this long.
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
