/**
 * Kubernetes resource quantities ("500m", "2", "2Gi", "1.5G", "1e3") turned into the units rules
 * compare: millicores for CPU and bytes for memory. Kubernetes rounds a quantity up to the unit it
 * is read in, so "0.0001" CPU is 1 millicore, never 0.
 */

/** Suffix → multiplier of the base unit. */
const SUFFIX: Readonly<Record<string, number>> = {
  '': 1,
  n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

const QUANTITY_RE = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$/;

/** The quantity in base units (cores, bytes), or undefined when it is not a Kubernetes quantity. */
export function parseQuantity(q: unknown): number | undefined {
  if (typeof q === 'number') return Number.isFinite(q) ? q : undefined;
  if (typeof q !== 'string') return undefined;
  const m = QUANTITY_RE.exec(q.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const mult = m[2] !== undefined ? 10 ** Number(m[2].slice(1)) : SUFFIX[m[3] ?? '']!;
  const v = n * mult;
  return Number.isFinite(v) ? v : undefined;
}

/** A CPU quantity in millicores, rounded up ("500m" → 500, "2" → 2000, "0.25" → 250). */
export function cpuMillicores(q: unknown): number | undefined {
  const v = parseQuantity(q);
  // 1e-9 absorbs float noise: 0.1 * 1000 is 100.00000000000001, which is 100, not 101.
  return v === undefined ? undefined : Math.ceil(v * 1000 - 1e-9);
}

/** A memory quantity in bytes, rounded up ("2Gi" → 2147483648, "1.5G" → 1500000000). */
export function memoryBytes(q: unknown): number | undefined {
  const v = parseQuantity(q);
  return v === undefined ? undefined : Math.ceil(v - 1e-9);
}
