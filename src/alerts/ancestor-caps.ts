/**
 * An alert's stored event names each ancestor's capability sets once, not once per process: a
 * parent whose three sets are its child's keeps a marker (`caps_as_child: true`) instead of them,
 * and the event is shown (API, dashboard, `minewatch alerts show`) with them written out again.
 *
 * Why: the sets are text (`CAP_CHOWN CAP_DAC_OVERRIDE …`, ~570 bytes each for root), and a
 * process tree almost always holds one set all the way up: two sets times eight processes were
 * 9 of an exec alert's 15 KB of event. Every byte of it is encoded on the exec → alert path and
 * written to the store's WAL (issue 16). Nothing is lost: a parent whose sets differ keeps its own,
 * and the marker is only written where all three equal the child's as it is stored.
 */

type Obj = Record<string, unknown>;

const CAP_FIELDS = ['cap_permitted', 'cap_effective', 'cap_inheritable'] as const;

/** The marker a parent keeps instead of capability sets equal to its child's. */
export const CAPS_AS_CHILD = 'caps_as_child';

/** Whether `parent` has capability sets, all three the same as `child`'s. */
export function capsAsChild(child: Obj, parent: Obj): boolean {
  let any = false;
  for (const f of CAP_FIELDS) {
    if (parent[f] !== child[f]) return false;
    if (parent[f] !== undefined) any = true;
  }
  return any;
}

/** `parent` without its capability sets, with the marker instead. */
export function withoutCaps(parent: Obj): Obj {
  const copy: Obj = { ...parent };
  for (const f of CAP_FIELDS) delete copy[f];
  copy[CAPS_AS_CHILD] = true;
  return copy;
}

/**
 * A stored event (parsed JSON) with each marked ancestor's capability sets written out again from
 * its child's, in place. Events stored before the marker pass unchanged.
 */
export function expandAncestorCaps(ev: unknown): unknown {
  if (ev === null || typeof ev !== 'object') return ev;
  let child = (ev as Obj).proc;
  for (let depth = 0; depth < 1000 && child !== null && typeof child === 'object'; depth++) {
    const parent = (child as Obj).parent;
    if (parent === null || typeof parent !== 'object') break;
    const p = parent as Obj;
    if (p[CAPS_AS_CHILD] === true) {
      delete p[CAPS_AS_CHILD];
      for (const f of CAP_FIELDS) if ((child as Obj)[f] !== undefined) p[f] = (child as Obj)[f];
    }
    child = p;
  }
  return ev;
}
