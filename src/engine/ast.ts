/**
 * The condition AST. Offsets (`at`) count characters into the condition text the parser was
 * given; the loader maps them back to file:line:col.
 */

export type Transformer = 'tolower' | 'toupper' | 'b64' | 'basename' | 'len';
export const TRANSFORMERS: readonly Transformer[] = ['tolower', 'toupper', 'b64', 'basename', 'len'];

export interface FieldRef {
  kind: 'field';
  name: string;
  /** Bracket argument as written between [ and ], unquoted. */
  arg?: string;
  at: number;
  /** Set by the loader for AST built outside any condition text (exceptions). */
  loc?: unknown;
}

export interface TransformRef {
  kind: 'transform';
  fn: Transformer;
  arg: FieldOperand;
  at: number;
  loc?: unknown;
}

export type FieldOperand = FieldRef | TransformRef;

export interface Literal {
  value: string;
  /** Quoted values are never taken as list names. */
  quoted: boolean;
  at: number;
  loc?: unknown;
}

export type Operand =
  | { kind: 'value'; lit: Literal }
  | { kind: 'list'; items: Literal[]; at: number; loc?: unknown }
  /** val(field) or a transformer on the right-hand side: compare with another field. */
  | { kind: 'fieldval'; field: FieldOperand; at: number };

export const UNARY_OPS = ['exists'] as const;
export const NUM_OPS = ['<=', '<', '>=', '>'] as const;
export const STR_OPS = ['==', '=', '!=', 'glob', 'iglob', 'contains', 'icontains', 'bcontains', 'startswith', 'bstartswith', 'endswith', 'regex'] as const;
export const LIST_OPS = ['intersects', 'in', 'pmatch'] as const;
export type Op = (typeof UNARY_OPS)[number] | (typeof NUM_OPS)[number] | (typeof STR_OPS)[number] | (typeof LIST_OPS)[number];

export type Expr =
  | { kind: 'and'; items: Expr[]; at: number }
  | { kind: 'or'; items: Expr[]; at: number }
  | { kind: 'not'; expr: Expr; at: number }
  /** A bare identifier: a macro name, resolved by the compiler. */
  | { kind: 'ref'; name: string; at: number; loc?: unknown }
  | { kind: 'cmp'; left: FieldOperand; op: Op; right?: Operand; at: number; opAt: number; loc?: unknown };
