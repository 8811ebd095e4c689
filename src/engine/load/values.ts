/**
 * What libs refuses when it compiles a condition, checked on the parsed condition before our
 * compiler builds it (libsinsp filter.cpp sinsp_filter_compiler, filter_compare.cpp
 * flt_is_comparable, value_parser.cpp string_to_rawval, sinsp_filtercheck_event.cpp
 * validate_filter_value):
 * - operators a field type does not support (bcontains on text; only in/intersects/exists on a
 *   list field);
 * - values that do not parse for the field's type: numbers as sscanf("%d") reads them (decimal,
 *   optional sign, nothing after), port service names (/etc/services), addresses without a
 *   network on address fields and networks on network fields, booleans spelled true or false;
 * - evt.type values that name no event.
 * Numbers and port names are rewritten in place to the decimal value our compiler reads.
 */
import { readFileSync } from 'node:fs';
import type { FieldRegistry } from '../../fields/registry.js';
import type { FieldType } from '../../fields/types.js';
import type { Expr, FieldOperand, Literal } from '../ast.js';
import { CompileError, type Locator } from '../compiler.js';
import { parseIp } from '../../platform/ip.js';
import { isKnownEventType } from './event-types.js';

/** Operators per value type (flt_is_comparable_*); `exists` applies to every field. */
const NUMERIC_OPS = new Set(['=', '==', '!=', '<', '<=', '>', '>=', 'in', 'intersects']);
const OPS: Record<string, ReadonlySet<string>> = {
  numeric: NUMERIC_OPS,
  bool: new Set(['=', '==', '!=', 'in', 'intersects']),
  address: new Set(['=', '==', '!=', 'in', 'intersects']),
  string: new Set(['=', '==', '!=', '<', '<=', '>', '>=', 'contains', 'in', 'icontains', 'startswith', 'glob', 'pmatch', 'endswith', 'intersects', 'iglob', 'regex']),
  buffer: new Set(['=', '==', '!=', 'contains', 'in', 'startswith', 'endswith', 'intersects', 'bcontains', 'bstartswith']),
  list: new Set(['in', 'intersects']),
};
const FAMILY_NAME: Record<string, string> = {
  numeric: 'numeric filters', bool: 'numeric filters', address: 'ip address and network filters',
  string: 'string filters', buffer: 'buffer filters', list: 'list filters',
};

function family(t: FieldType): keyof typeof OPS {
  switch (t) {
    case 'int64': case 'uint64': case 'port': case 'reltime': case 'abstime': return 'numeric';
    case 'bool': return 'bool';
    case 'ipaddr': case 'ipnet': return 'address';
    case 'bytebuf': return 'buffer';
    default: return 'string';
  }
}

interface Typed {
  type: FieldType;
  /** A list field (fd.types, ka.req.pod.containers.image): not proc.aname, which tests any ancestor. */
  list: boolean;
  name?: string;
}

/** What Falco's filter_warning_resolver finds in a rule's condition, macros expanded. */
export interface ConditionWarnings {
  /** A ka.* or jevt.* field compared for equality with "<NA>" (LOAD_UNSAFE_NA_CHECK). */
  unsafeNa: boolean;
  /** evt.dir named: deprecated, every event is an exit event (LOAD_DEPRECATED_ITEM). */
  evtDir: boolean;
}

const EQUALITY_OPS = new Set(['==', '=', '!=', 'in', 'intersects', 'pmatch']);

export class ConditionChecker {
  /** Macros already checked for a source: each is walked once, however many rules use it. */
  private readonly done = new Set<string>();
  private readonly macroWarnings = new Map<string, ConditionWarnings>();

  constructor(
    private readonly registry: FieldRegistry,
    private readonly macros: ReadonlyMap<string, { expr: Expr; locate: Locator }>,
  ) {}

  /** Throws CompileError (unknownField for an unknown event type) on the first refusal. */
  check(e: Expr, locate: Locator, source: string, open = new Set<string>()): void {
    switch (e.kind) {
      case 'and': case 'or':
        for (const x of e.items) this.check(x, locate, source, open);
        return;
      case 'not':
        this.check(e.expr, locate, source, open);
        return;
      case 'ref': {
        const key = `${source}\u0000${e.name}`;
        const m = this.macros.get(e.name);
        if (!m || this.done.has(key) || open.has(e.name)) return;
        open.add(e.name);
        this.check(m.expr, m.locate, source, open);
        open.delete(e.name);
        this.done.add(key);
        return;
      }
      case 'cmp':
        this.cmp(e, locate, source);
    }
  }

  /** filter_warning_resolver over the condition, through its macros. */
  warnings(e: Expr, open = new Set<string>()): ConditionWarnings {
    const out: ConditionWarnings = { unsafeNa: false, evtDir: false };
    const add = (w: ConditionWarnings): void => {
      out.unsafeNa ||= w.unsafeNa;
      out.evtDir ||= w.evtDir;
    };
    const fieldNames = (f: FieldOperand): string[] => (f.kind === 'field' ? [f.name] : fieldNames(f.arg));
    const walk = (x: Expr): void => {
      switch (x.kind) {
        case 'and': case 'or':
          for (const y of x.items) walk(y);
          return;
        case 'not':
          walk(x.expr);
          return;
        case 'ref': {
          const m = this.macros.get(x.name);
          if (!m || open.has(x.name)) return;
          let w = this.macroWarnings.get(x.name);
          if (!w) {
            open.add(x.name);
            w = this.warnings(m.expr, open);
            open.delete(x.name);
            this.macroWarnings.set(x.name, w);
          }
          add(w);
          return;
        }
        case 'cmp': {
          const names = [...fieldNames(x.left), ...(x.right?.kind === 'fieldval' ? fieldNames(x.right.field) : [])];
          if (names.includes('evt.dir')) out.evtDir = true;
          const unsafe = x.left.kind === 'field' && (x.left.name.startsWith('ka.') || x.left.name.startsWith('jevt.'));
          if (unsafe && EQUALITY_OPS.has(x.op) && x.right) {
            const lits = x.right.kind === 'value' ? [x.right.lit] : x.right.kind === 'list' ? x.right.items : [];
            if (lits.some((l) => l.value === '<NA>')) out.unsafeNa = true;
          }
        }
      }
    };
    walk(e);
    return out;
  }

  private typed(f: FieldOperand, source: string): Typed | undefined {
    if (f.kind === 'transform') {
      const inner = this.typed(f.arg, source);
      if (!inner) return undefined;
      if (f.fn === 'len') return { type: 'uint64', list: false };
      return { type: f.fn === 'b64' ? 'bytebuf' : 'charbuf', list: inner.list };
    }
    try {
      const r = this.registry.resolve(source, f.name, f.arg);
      return { type: r.def.type, list: r.multi && !r.anyOf, name: f.arg === undefined ? f.name : undefined };
    } catch {
      return undefined; // an unknown field: the compiler reports it, with skip-if-unknown-filter in mind
    }
  }

  private cmp(e: Extract<Expr, { kind: 'cmp' }>, locate: Locator, source: string): void {
    if (e.op === 'exists') return;
    const left = this.typed(e.left, source);
    if (!left) return;
    const fam = left.list ? 'list' : family(left.type);
    if (!OPS[fam]!.has(e.op)) {
      throw new CompileError(`filter error: '${e.op}' operator not supported ${FAMILY_NAME[fam]}`, locate(e.opAt), e.op);
    }
    const r = e.right;
    if (!r || r.kind === 'fieldval') return;
    const lits: Literal[] = r.kind === 'value' ? [r.lit] : r.items;
    if (e.op === 'bcontains' || e.op === 'bstartswith') return; // hex strings: the compiler reads them
    for (const lit of lits) {
      const err = (msg: string, unknown = false): never => {
        throw new CompileError(msg, locate(lit.at), lit.value, unknown);
      };
      switch (left.type) {
        case 'int64': case 'uint64': case 'reltime': case 'abstime': {
          const n = parseInteger(lit.value, left.type === 'int64');
          if (n === undefined) return err(`${lit.value} is not a valid number`);
          lit.value = n;
          break;
        }
        case 'port': {
          const p = parsePort(lit.value);
          if (p === undefined) err(`unrecognized protocol ${lit.value}`);
          lit.value = String(p);
          break;
        }
        case 'bool':
          if (lit.value !== 'true' && lit.value !== 'false') err(`filter error: unrecognized boolean value ${lit.value}`);
          break;
        case 'ipaddr':
          if (!isAddress(lit.value)) err(`unrecognized IP address ${lit.value}`);
          break;
        case 'ipnet':
          if (!isNetwork(lit.value)) err(`unrecognized IP network ${lit.value}`);
          break;
        default:
          if (left.name === 'evt.type' && source === 'syscall' && !isKnownEventType(lit.value)) err(`unknown event type ${lit.value}`, true);
      }
    }
  }
}

/**
 * sscanf("%" PRId64 "%c") == 1: blanks, an optional sign and decimal digits, nothing after.
 * Unsigned fields take a negative number modulo 2^64, as strtoull does; past the range it saturates.
 */
function parseInteger(s: string, signed: boolean): string | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d+)$/.exec(s);
  if (!m) return undefined;
  let n = BigInt(m[2]!);
  if (m[1] === '-') n = -n;
  const U64 = 1n << 64n;
  if (signed) {
    if (n >= 1n << 63n) n = (1n << 63n) - 1n;
    if (n < -(1n << 63n)) n = -(1n << 63n);
  } else if (n >= U64 || n <= -U64) n = U64 - 1n;
  else if (n < 0n) n += U64;
  return n.toString();
}

let services: Map<string, number> | undefined;

/** getservbyname(name, NULL): the first /etc/services line naming it (or an alias), any protocol. */
function serviceTable(): Map<string, number> {
  if (services) return services;
  services = new Map();
  let text = '';
  try {
    text = readFileSync('/etc/services', 'utf8');
  } catch {
    // No /etc/services (slim containers): the well-known names rules use.
    text = 'ftp 21/tcp\nssh 22/tcp\ntelnet 23/tcp\nsmtp 25/tcp\ndomain 53/udp\nhttp 80/tcp www\npop3 110/tcp\nntp 123/udp\nimap 143/tcp\nsnmp 161/udp\nldap 389/tcp\nhttps 443/tcp\nsmtps 465/tcp\nsubmission 587/tcp\nldaps 636/tcp\nimaps 993/tcp\npop3s 995/tcp\n';
  }
  for (const line of text.split('\n')) {
    const [body] = line.split('#', 1);
    const parts = body!.trim().split(/\s+/);
    if (parts.length < 2) continue;
    const port = Number.parseInt(parts[1]!, 10);
    if (!Number.isFinite(port)) continue;
    for (const name of [parts[0]!, ...parts.slice(2)]) if (!services.has(name)) services.set(name, port);
  }
  return services;
}

/** A port as libs reads one: digits only (stoi, kept to 16 bits), empty as 0, or a service name. */
function parsePort(s: string): number | undefined {
  if (s === '') return 0;
  if (/^\d+$/.test(s)) return Number(BigInt(s) & 0xffffn);
  return serviceTable().get(s);
}

/** An IPv4 address (inet_pton: four decimal parts, no leading zeros) or an IPv6 address. */
function isAddress(s: string): boolean {
  if (s.includes('.') && !s.includes(':')) return /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(s);
  return !s.includes('/') && parseIp(s) !== undefined;
}

/** A network: an address, '/', and a prefix length within the address family's width. */
function isNetwork(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return false;
  const ip = s.slice(0, slash);
  const bits = s.slice(slash + 1);
  if (!/^\d+$/.test(bits) || !isAddress(ip)) return false;
  return Number(bits) <= (ip.includes(':') ? 128 : 32);
}
