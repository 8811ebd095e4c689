/** `minewatch whack test` and `minewatch whack check-config`: execwhacker's decision, without killing anything. */
import type { Command } from 'commander';
import { ConfigError, type ConfigProblem, formatConfigProblem, wholeConfigCheck } from '../config/load.js';
import { type DetectorsConfig, detectorsWithDefaults } from '../detectors/config.js';
import { type DetectorsFileKind, loadDetectorsFiles } from '../detectors/cryptnono-files.js';
import { DEFAULT_BANNED_CONFIG, ExecMatcher, type Explanation, effectiveExecConfigs, shlexJoin } from '../detectors/execwhacker/index.js';
import { type ReaderDecision, asExecuted, pathProbe, spareReader } from '../detectors/execwhacker/readers.js';
import { collect } from './common.js';

/** Exit codes: 0 spared, 1 would kill, 2 the config (or the command) is wrong. */
const EXIT_SPARED = 0;
const EXIT_KILL = 1;
const EXIT_BAD = 2;

function problemJson(p: ConfigProblem) {
  return { file: p.file, line: p.line, col: p.col, path: p.path, message: p.message };
}

function load(files: string[] | undefined): { detectors: DetectorsConfig; warnings: ConfigProblem[]; files: { file: string; kind: DetectorsFileKind }[] } {
  if (!files || files.length === 0) return { detectors: detectorsWithDefaults({}), warnings: [], files: [] };
  return loadDetectorsFiles(files, wholeConfigCheck());
}

/** Quoted for display, as written (JSON.stringify would double every backslash of a regex). */
const q = (s: string): string => `'${s}'`;

function printExplanation(x: Explanation, d: DetectorsConfig, m: ExecMatcher, reader: ReaderDecision | undefined): void {
  const w = (s: string) => process.stdout.write(s + '\n');
  const where = (): void => {
    w(`  ${x.cmdline}`);
    if (x.at && !/[\n\r\t]/.test(x.cmdline.slice(0, x.at.end))) w(`  ${' '.repeat(x.at.start)}${'^'.repeat(Math.max(1, x.at.end - x.at.start))}`);
  };
  if (x.kill && reader?.spared) {
    w(`spared: spare_readers: ${reader.tool} is the system's own and banned string ${q(x.banned!)} (config ${x.config}) is only in what it reads or searches for`);
    where();
    return;
  }
  if (x.kill) {
    w(`kill: banned string ${q(x.banned!)} (config ${x.config}) occurs as a standalone word`);
    where();
    if (reader && !reader.spared) w(`not spared as a reader (spare_readers): ${reader.reason}`);
    if (!d.execwhacker.enabled) w('note: execwhacker is off in this configuration (detectors.execwhacker.enabled is not true): the agent would not kill it');
    return;
  }
  switch (x.spared) {
    case 'allowed':
      w(`spared: allowed by pattern ${q(x.allowedBy!)} (config ${x.allowedConfig}), which matches the command line from its start`);
      w(`  banned string ${q(x.banned!)} (config ${x.config}) would have killed it:`);
      where();
      return;
    case 'word_boundary':
      w(`spared: banned string ${q(x.banned!)} (config ${x.config}) occurs only as part of a longer word`);
      where();
      return;
    default:
      w(`spared: no banned string occurs (${m.stats.distinctStrings} strings in ${m.stats.configs} config${m.stats.configs === 1 ? '' : 's'})`);
  }
}

export function registerWhack(program: Command): void {
  const whack = program
    .command('whack')
    .description("execwhacker (cryptnono's banned command strings): test a command line, check configs");

  whack
    .command('test')
    .description(
      'say whether execwhacker would kill a process with this command line: which config and banned string matched, ' +
        'or which allowed pattern or word boundary spared it. Exit status: 1 when it would kill, 0 when it would not, ' +
        '2 when a config file is wrong',
    )
    .argument('<cmdline...>', 'the command line as ps shows it (quote it; several words are joined with spaces), or argv with --argv')
    .option('-c, --config <file>', "cryptnono's config.json or chart values, or a minewatch config (repeatable, merged in order)", collect)
    .option('--argv', 'the arguments are argv (argv[0] first), joined as Python\'s shlex.join does, as the agent does')
    .option('--no-default-list', `leave out minewatch's shipped banned list (config ${DEFAULT_BANNED_CONFIG})`)
    .option('--spare-readers', 'as with detectors.execwhacker.spare_readers: true (the executable is argv[0] found on PATH, on this host)')
    .option('--json', 'print the decision as JSON')
    .addHelpText(
      'after',
      '\nExit status:\n  1  it would kill the process\n  0  it would not (allowed pattern, word boundary, or no banned string)\n  2  a config file is wrong (the problems are printed)\n\n' +
        'Without --config, the shipped banned list alone decides. The shipped list is included unless\n' +
        '--no-default-list is given or a config sets detectors.execwhacker.default_list: false.\n\n' +
        'Examples:\n  minewatch whack test "/tmp/xmrig -o pool.supportxmr.com:443"\n' +
        '  minewatch whack test --config config.json "allowed cryptnono.BANNED.string1"\n' +
        '  minewatch whack test --argv -- python3 -c "print(1)"\n' +
        '  minewatch whack test --spare-readers --argv -- grep -ri xmrig /var/log/syslog\n',
    )
    .action((words: string[], opts: { config?: string[]; argv?: boolean; defaultList: boolean; spareReaders?: boolean; json?: boolean }) => {
      let loaded: ReturnType<typeof load>;
      try {
        loaded = load(opts.config);
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        if (opts.json) process.stdout.write(JSON.stringify({ valid: false, errors: e.problems.map(problemJson) }, null, 2) + '\n');
        else for (const p of e.problems) process.stderr.write(`${formatConfigProblem(p)}\n`);
        process.stderr.write(`${e.problems.length} error(s) in the config: nothing was tested.\n`);
        process.exitCode = EXIT_BAD;
        return;
      }
      const d = loaded.detectors;
      if (!opts.defaultList) d.execwhacker.default_list = false;
      if (!opts.json) for (const w of loaded.warnings) process.stderr.write(`${formatConfigProblem(w)} (warning)\n`);
      const m = new ExecMatcher(effectiveExecConfigs(d));
      const cmdline = opts.argv ? shlexJoin(words) : words.join(' ');
      const x = m.explain(cmdline);
      let reader: ReaderDecision | undefined;
      if (x.kill && (opts.spareReaders || d.execwhacker.spare_readers)) {
        // Without --argv the words are split at spaces (quotes are not undone): give --argv for exactness.
        const argv = opts.argv || words.length > 1 ? words : cmdline.split(/\s+/).filter(Boolean);
        const run = asExecuted(argv);
        reader = run ? spareReader({ pid: 0, ...run }, (a, e) => m.bannedIn(a, e), pathProbe(run.exepath)) : { spared: false, reason: `${argv[0] ?? '(nothing)'} is not found on PATH` };
      }
      const kill = x.kill && !reader?.spared;
      if (opts.json) {
        process.stdout.write(
          JSON.stringify(
            {
              cmdline: x.cmdline,
              kill,
              spared: reader?.spared ? 'reader' : x.spared ?? null,
              reader: reader ?? null,
              config: x.config ?? null,
              banned: x.banned ?? null,
              allowedBy: x.allowedBy ?? null,
              allowedConfig: x.allowedConfig ?? null,
              at: x.at ?? null,
              enabled: d.execwhacker.enabled,
              configs: effectiveExecConfigs(d).map((c) => c.name),
              warnings: loaded.warnings.map(problemJson),
            },
            null,
            2,
          ) + '\n',
        );
      } else printExplanation(x, d, m, reader);
      process.exitCode = kill ? EXIT_KILL : EXIT_SPARED;
    });

  whack
    .command('check-config')
    .description(
      "check detectors config files as the agent would load them: cryptnono's config.json, cryptnono's chart values, or a minewatch config " +
        '(checked whole). Every problem names its file, line and key path; exit 1 on any error',
    )
    .argument('<files...>', 'files, merged in order as cryptnono merges the files Helm gives it')
    .option('--json', 'print the result as JSON')
    .option('-q, --quiet', 'do not print warnings')
    .action((files: string[], opts: { json?: boolean; quiet?: boolean }) => {
      let loaded: ReturnType<typeof load>;
      try {
        loaded = loadDetectorsFiles(files, wholeConfigCheck());
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        if (opts.json) process.stdout.write(JSON.stringify({ valid: false, errors: e.problems.map(problemJson), warnings: [] }, null, 2) + '\n');
        else {
          for (const p of e.problems) process.stderr.write(`${formatConfigProblem(p)}\n`);
          process.stderr.write(`${e.problems.length} error(s): not loaded. Fix the keys above and run again.\n`);
        }
        process.exitCode = 1;
        return;
      }
      const d = loaded.detectors;
      const own = new ExecMatcher(effectiveExecConfigs({ execwhacker: { ...d.execwhacker, default_list: false } }));
      const all = d.execwhacker.default_list ? new ExecMatcher(effectiveExecConfigs(d)) : own;
      const fk = d.tcpflowkiller.config.FlowKiller;
      if (opts.json) {
        process.stdout.write(
          JSON.stringify(
            {
              valid: true,
              errors: [],
              warnings: loaded.warnings.map(problemJson),
              files: loaded.files,
              detectors: { ...d, notes: undefined },
              execwhacker: { ...own.stats, withDefaultList: d.execwhacker.default_list ? all.stats.distinctStrings : null },
            },
            null,
            2,
          ) + '\n',
        );
        process.exitCode = 0;
        return;
      }
      if (!opts.quiet) for (const w of loaded.warnings) process.stderr.write(`${formatConfigProblem(w)} (warning)\n`);
      for (const f of loaded.files) process.stdout.write(`${f.file}: Ok (${f.kind})\n`);
      const on = (b: boolean) => (b ? 'on' : 'off');
      const names = Object.keys(d.execwhacker.configs);
      process.stdout.write(
        `execwhacker: ${on(d.execwhacker.enabled)}; ${names.length} config${names.length === 1 ? '' : 's'}${names.length ? ` (${names.join(', ')})` : ''}, ` +
          `${own.stats.distinctStrings} banned strings, ${own.stats.allowedPatterns} allowed patterns` +
          `${d.execwhacker.default_list ? `; with the shipped list: ${all.stats.distinctStrings} strings` : '; shipped list left out'}; ` +
          `rescan every ${d.execwhacker.rescan_interval_s} s${d.execwhacker.rescan_interval_s === 0 ? ' (off)' : ''}\n` +
          `monero: kill ${on(d.monero.enabled)} (the RandomX alert is on with the eBPF driver either way)\n` +
          `tcpflowkiller: ${on(d.tcpflowkiller.enabled)}; ${fk.banned_ipv4_file_globs.length} banned IPv4 file globs, ` +
          `more than ${fk.unique_destinations_threshold} destinations in ${fk.lookback_duration_seconds} s is a scan, ${d.tcpflowkiller.exempt_cidrs.length} exempt CIDRs\n`,
      );
      process.exitCode = 0;
    });
}
