/**
 * Just enough of the POSIX shell grammar to see what a CI step runs: the snippet is cut into
 * simple commands (at newlines, ; & && || | and the parentheses of subshells and $( … )), each
 * an argv of words with quotes and escapes removed. Comments (# at the start of a word) are
 * dropped, so a commented-out miner is not a miner. Variables are left as written.
 */

export interface Word {
  /** The word as the command receives it: quotes and escapes removed. */
  text: string;
  /** Offset of the word's first character in the snippet. */
  start: number;
  /** The word as written (with quotes), for locating it in the source file. */
  raw: string;
}

export type SimpleCommand = Word[];

const OPERATOR_CHARS = new Set([';', '&', '|', '(', ')', '`', '\n']);

/** Split `script` into simple commands. Never throws: unbalanced quotes run to the end. */
export function splitCommands(script: string): SimpleCommand[] {
  const commands: SimpleCommand[] = [];
  let cur: Word[] = [];
  let word = '';
  let wordStart = -1;
  let inWord = false;
  const endWord = (end: number) => {
    if (inWord) cur.push({ text: word, start: wordStart, raw: script.slice(wordStart, end) });
    word = '';
    inWord = false;
  };
  const endCommand = () => {
    if (cur.length) commands.push(cur);
    cur = [];
  };
  const n = script.length;
  let i = 0;
  while (i < n) {
    const c = script[i]!;
    if (c === '\\') {
      if (script[i + 1] === '\n') {
        i += 2; // line continuation
        continue;
      }
      if (!inWord) {
      inWord = true;
      wordStart = i;
    }
      word += script[i + 1] ?? '';
      i += 2;
      continue;
    }
    if (c === "'") {
      if (!inWord) {
      inWord = true;
      wordStart = i;
    }
      const close = script.indexOf("'", i + 1);
      const stop = close < 0 ? n : close;
      word += script.slice(i + 1, stop);
      i = stop + 1;
      continue;
    }
    if (c === '"') {
      if (!inWord) {
      inWord = true;
      wordStart = i;
    }
      i++;
      while (i < n && script[i] !== '"') {
        if (script[i] === '\\' && i + 1 < n && '"\\$`\n'.includes(script[i + 1]!)) {
          if (script[i + 1] !== '\n') word += script[i + 1];
          i += 2;
        } else {
          word += script[i++];
        }
      }
      i++;
      continue;
    }
    if (c === '#' && !inWord) {
      const nl = script.indexOf('\n', i);
      i = nl < 0 ? n : nl;
      continue;
    }
    if (c === '$' && script[i + 1] === '(' && script[i + 2] !== '(') {
      endWord(i);
      endCommand();
      i += 2;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      endWord(i);
      i++;
      continue;
    }
    if (OPERATOR_CHARS.has(c)) {
      endWord(i);
      endCommand();
      i++;
      continue;
    }
    if (!inWord) {
      inWord = true;
      wordStart = i;
    }
    word += c;
    i++;
  }
  endWord(n);
  endCommand();
  return commands;
}

/** Programs that run the command after their own options (sudo xmrig, nohup ./xmrig &, env A=1 x). */
const WRAPPERS = new Set(['sudo', 'nohup', 'setsid', 'exec', 'env', 'nice', 'ionice', 'timeout', 'time', 'stdbuf', 'chrt', 'taskset', 'command', 'doas', 'screen', 'tmux', 'xargs', 'watch']);

/**
 * The argv a simple command really runs: leading VAR=value assignments and wrappers with their
 * options removed (`sudo -E nohup timeout 3600 ./xmrig -o …` → `./xmrig -o …`). Wrapper options
 * that take a value are not known one by one; a word that is a number (timeout 3600, nice -n 19)
 * is skipped along with the options.
 */
export function effectiveArgv(cmd: SimpleCommand): Word[] {
  let i = 0;
  for (;;) {
    while (i < cmd.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(cmd[i]!.text)) i++;
    const w = cmd[i];
    if (!w || !WRAPPERS.has(basename(w.text))) break;
    i++;
    while (i < cmd.length && (cmd[i]!.text.startsWith('-') || /^\d+[smhd]?$/.test(cmd[i]!.text))) i++;
    // screen -dmS NAME and tmux new -d -s NAME take a session name before the command.
    if ((w.text === 'screen' || w.text === 'tmux') && i < cmd.length && !cmd[i]!.text.includes('/')) i++;
  }
  return cmd.slice(i);
}

export function basename(p: string): string {
  const s = p.lastIndexOf('/');
  return s < 0 ? p : p.slice(s + 1);
}

/** The script a shell is told to run with -c (bash -c "…", sh -c '…', eval "…"), if any. */
export function inlineScript(argv: Word[]): Word | undefined {
  const prog = argv[0] ? basename(argv[0].text) : '';
  if (prog === 'eval') return argv[1];
  if (!/^(?:ba|da|z|k|a)?sh$/.test(prog)) return undefined;
  for (let i = 1; i < argv.length; i++) {
    const t = argv[i]!.text;
    if (/^-[a-zA-Z]*c[a-zA-Z]*$/.test(t)) return argv[i + 1];
    if (!t.startsWith('-')) return undefined;
  }
  return undefined;
}
