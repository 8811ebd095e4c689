/**
 * Whether the loaded rules read a field (src/agent/rules-read.ts): what lets the proc connector
 * skip loginuid and status, and the table skip proc.cwd. A "no" that should be "yes" hides a field from a rule,
 * so every place a rule can name one is tried: condition, macro, output, the config's append_output.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DEFAULT_RULES_FILES, Engine } from '../src/engine/index.js';
import type { AppendOutput } from '../src/engine/output.js';
import { rulesReadField, STATUS_FIELDS } from '../src/agent/rules-read.js';

const rule = (condition: string, output = 'seen (pid=%proc.pid)', extra = ''): string => `${extra}
- rule: R
  desc: d
  condition: ${condition}
  output: ${output}
  priority: WARNING
`;

const reads = (text: string, field: string, appendOutput?: AppendOutput[]): boolean =>
  rulesReadField(() => new Engine([{ path: 'r.yaml', text }], { appendOutput }), field)();

test('a field named in a condition, a macro, an output or append_output is read; one named nowhere is not', () => {
  const plain = rule('evt.type = execve and proc.name = xmrig');
  assert.equal(reads(plain, 'user.loginuid'), false);
  assert.equal(reads(rule('evt.type = execve and user.loginuid = 1000'), 'user.loginuid'), true, 'condition');
  assert.equal(reads(rule('evt.type = execve and from_login', undefined, '- macro: from_login\n  condition: user.loginuid >= 1000\n'), 'user.loginuid'), true, 'through a macro');
  assert.equal(reads(rule('evt.type = execve', 'seen (login=%user.loginname)'), 'user.loginname'), true, 'output');
  assert.equal(reads(plain, 'user.loginuid', [{ extra_fields: ['user.loginuid'] }]), true, 'append_output extra_fields');
  assert.equal(reads(plain, 'user.loginname', [{ extra_output: 'login=%user.loginname' }]), true, 'append_output extra_output');
  assert.equal(reads(plain, 'user.loginuid', [{ suggested_output: true }]), false, 'suggested output names no login field');
  // A longer name is another field.
  assert.equal(reads(rule('evt.type = execve and user.loginname = root'), 'user.login'), false);
});

test('the answer follows the engine: a reload that starts naming the field says so', () => {
  let engine = new Engine([{ path: 'r.yaml', text: rule('evt.type = execve') }], {});
  const read = rulesReadField(() => engine, 'user.loginuid');
  assert.equal(read(), false);
  engine = new Engine([{ path: 'r.yaml', text: rule('evt.type = execve and user.loginuid = 0') }], {});
  assert.equal(read(), true);
});

test('the fields behind /proc/PID/status: any one of them named reads status; the default rules name none', () => {
  const status = (text: string): boolean => rulesReadField(() => new Engine([{ path: 'r.yaml', text }], {}), STATUS_FIELDS)();
  assert.equal(status(rule('evt.type = execve and proc.name = xmrig')), false);
  assert.equal(status(rule('evt.type = execve and thread.cap_effective contains CAP_SYS_ADMIN')), true, 'a capability set');
  assert.equal(status(rule('evt.type = execve and proc.vpid = 1')), true, 'the vpid');
  assert.equal(status(rule('evt.type = execve', 'seen (writable=%proc.is_exe_writable)')), true, 'in an output');
  assert.equal(status(rule('evt.type = execve and proc.is_vpgid_leader = true')), true, 'leadership compares the vpid');
  // proc.vpgid comes from stat, not status; a longer name is another field.
  assert.equal(status(rule('evt.type = execve and proc.vpgid = 1 and proc.name = vpid')), false);
  const defaults = DEFAULT_RULES_FILES.map((path) => ({ path, text: readFileSync(path, 'utf8') }));
  assert.ok(defaults.length >= 1);
  assert.equal(rulesReadField(() => new Engine(defaults, {}), STATUS_FIELDS)(), false, 'the default rules: the proc connector skips status for them');
});
