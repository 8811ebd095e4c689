/**
 * Quiet execs, the part both kernel drivers share (issue 16): the eBPF driver's quiet records
 * (native/ebpf/minewatch.h, struct mw_reader) and the proc connector's quiet holds
 * (native/exec_quiet.c). The driver signs each exec (KernelExec.sig); the pipeline hands back each
 * signature nothing came of (no rule matched, no detector answered: EventPipelineOptions.onQuietExec);
 * the second time a signature comes back under the same rules, the driver is told, and execs like
 * it stop waking the agent at once. Twice, so that a storm of distinct command lines costs no call
 * into the driver per exec. A rule that would judge a later one differently (a count, a
 * container's metadata come since) still sees it, up to the driver's quiet hold later.
 */

/** The driver's side: start a new epoch (0 turns quiet execs off), and mark a signature quiet under it. */
export interface QuietExecDriver {
  setEpoch(epoch: number): void;
  /** False when the driver did not store it. */
  mark(sig: number): boolean;
}

/** A driver addon's two calls on an open handle, as a QuietExecDriver; undefined when the addon has none. */
export function addonQuietDriver<H>(addon: { setQuiet?(h: H, epoch: number): void; markQuiet?(h: H, sig: number): boolean }, handle: H): QuietExecDriver | undefined {
  if (!addon.setQuiet || !addon.markQuiet) return undefined;
  return { setEpoch: (epoch) => addon.setQuiet?.(handle, epoch), mark: (sig) => addon.markQuiet?.(handle, sig) === true };
}

/** Signatures remembered as found harmless once: cleared when full. */
const ONCE_MAX = 4096;

export class QuietExecs {
  /** The epoch in force (0: no exec is quiet). */
  private epoch = 0;
  private readonly once = new Set<number>();
  /** Signatures the driver was told are quiet. */
  marked = 0;
  /** undefined: quiet execs are off (nothing is remembered or passed on). */
  private driver: QuietExecDriver | undefined;

  /** The driver opened (with quiet execs on) and starts from no quiet exec, or closed (undefined). */
  attach(driver: QuietExecDriver | undefined): void {
    this.driver = driver;
    this.forgetQuiet();
  }

  /** Nothing came of an exec of this signature (EventPipelineOptions.onQuietExec). */
  execQuiet(sig: number): void {
    const d = this.epoch !== 0 ? this.driver : undefined;
    if (!d) return;
    if (!this.once.has(sig)) {
      if (this.once.size >= ONCE_MAX) this.once.clear();
      this.once.add(sig);
      return;
    }
    this.once.delete(sig);
    if (d.mark(sig)) this.marked++;
  }

  /** The rules or detectors changed (or the driver started): no exec is quiet until judged again under them. */
  forgetQuiet(): void {
    const d = this.driver;
    if (!d) return;
    this.epoch = this.epoch >= 0xffffffff ? 1 : this.epoch + 1;
    this.once.clear();
    d.setEpoch(this.epoch);
  }
}
