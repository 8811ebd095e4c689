/**
 * The two line formats Falco users know: the text line ("<time>: <Priority> <output>") and the
 * JSON alert.
 */
import { escapeControl } from '../../engine/escape.js';
import type { AlertMessage } from '../types.js';
import { toJsonText } from '../../engine/json.js';

export type LineFormat = 'text' | 'json';

/**
 * Falco's text line. A summary's output already ends with its count and time span (the pipeline
 * writes them there, so JSON consumers see them too): nothing is added here. Control characters
 * are escaped (a newline in a command line must not start a forged line of its own).
 */
export function textLine(msg: AlertMessage): string {
  return escapeControl(msg.output);
}

/** One line, without its newline. */
export function renderLine(msg: AlertMessage, format: LineFormat): string {
  return format === 'json' ? toJsonText(msg) : textLine(msg);
}

/**
 * `template` with {priority} (lower case), {rule}, {source}, {hostname} and {kind} filled in, each
 * value passed through `clean` so it cannot break the subject or topic's structure.
 */
export function fillTemplate(template: string, msg: AlertMessage, clean: (s: string) => string): string {
  return template.replace(/\{(priority|rule|source|hostname|kind)\}/g, (_, key: string) => {
    const v = key === 'kind' ? msg.minewatch?.kind ?? 'first' : key === 'priority' ? msg.priority.toLowerCase() : String(msg[key as 'rule' | 'source' | 'hostname'] ?? '');
    return clean(v) || '_';
  });
}

/** The placeholders fillTemplate knows. */
export const TEMPLATE_KEYS = ['priority', 'rule', 'source', 'hostname', 'kind'];
