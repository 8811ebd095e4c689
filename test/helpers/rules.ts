/** Small helpers for the rules-language tests: load YAML into a RulesEngine over the test catalog. */
import assert from 'node:assert/strict';
import { RulesEngine, type EngineOptions } from '../../src/engine/engine.js';
import type { RulesFileInput } from '../../src/engine/loader.js';
import { type RuleProblem, RulesLoadError, formatProblem } from '../../src/engine/types.js';
import type { Event } from '../../src/events.js';
import { testRegistry } from './catalog.js';

export type Files = string | RulesFileInput[];

function inputs(files: Files): RulesFileInput[] {
  return typeof files === 'string' ? [{ path: 'x.yaml', text: files }] : files;
}

/** YAML lines joined with newlines (tests write files as arrays so line numbers are countable). */
export function y(...lines: string[]): string {
  return lines.join('\n') + '\n';
}

export function load(files: Files, opts: Partial<EngineOptions> = {}): RulesEngine {
  return new RulesEngine(inputs(files), { registry: testRegistry(), ruleMatching: 'all', hostname: 'testhost', ...opts });
}

/** Load that must fail: every error and warning. */
export function loadFail(files: Files, opts: Partial<EngineOptions> = {}): { errors: RuleProblem[]; warnings: RuleProblem[] } {
  let caught: unknown;
  try {
    load(files, opts);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof RulesLoadError, `expected a RulesLoadError, got ${caught === undefined ? 'a successful load' : String(caught)}`);
  return { errors: caught.errors, warnings: caught.warnings };
}

export function show(ps: RuleProblem[]): string {
  return ps.map((p) => formatProblem(p)).join('\n');
}

/** The single error a load must fail with. */
export function oneError(files: Files, opts: Partial<EngineOptions> = {}): RuleProblem {
  const { errors } = loadFail(files, opts);
  assert.equal(errors.length, 1, `expected exactly one error, got:\n${show(errors)}`);
  return errors[0]!;
}

/**
 * Assert a problem's place ("x.yaml:3:7"), its Falco load code (a string such as
 * 'LOAD_ERR_VALIDATE') or message (substring or pattern), and snippet.
 */
export function assertProblem(p: RuleProblem, where: string, message: string | RegExp, snippet?: string): void {
  assert.equal(`${p.pos.file}:${p.pos.line}:${p.pos.col}`, where, `place of: ${formatProblem(p)}`);
  if (typeof message === 'string' && /^LOAD_[A-Z_]+$/.test(message)) assert.equal(p.code, message, `code of: ${formatProblem(p)}`);
  else if (typeof message === 'string') assert.ok(p.message.includes(message), `message ${JSON.stringify(p.message)} should include ${JSON.stringify(message)}`);
  else assert.match(p.message, message);
  if (snippet !== undefined) assert.equal(p.snippet, snippet, `snippet of: ${formatProblem(p)}`);
}

/** A full rule as YAML (condition as a one-line block scalar, so no quoting is needed). */
export function rule(name: string, condition: string, extra: string[] = []): string {
  return y(`- rule: ${name}`, '  desc: d', '  condition: >-', `    ${condition}`, '  output: o', '  priority: WARNING', ...extra.map((l) => '  ' + l));
}

/** Names of the rules an event fires, in order. */
export function fired(engine: RulesEngine, event: Event): string[] {
  return engine.process(event).map((m) => m.rule);
}

/** Compile one condition (with optional lists/macros before it) into a predicate over events. */
export function predicate(condition: string, prelude = ''): (event: Event) => boolean {
  const e = load(prelude + rule('R', condition));
  return (event) => fired(e, event).includes('R');
}

/** The Falco load codes of problems, in order. */
export function codes(ps: RuleProblem[]): string[] {
  return ps.map((p) => p.code ?? '?');
}
