/**
 * `minewatch response …`: look at and undo what the response actions did.
 *   blocked [--json]          the addresses block_destination holds in minewatch's nftables table
 *   unblock IP                take one out before its TTL runs out
 *   block IP [--ttl S]        put one in by hand (the same table, set and TTL as the action)
 * `--netns NS` runs nft inside a network namespace (nftables tables are per namespace).
 */
import type { Command } from 'commander';
import { BlockDestinationAction, DEFAULT_BLOCK_TTL_S, type BlockedEntry } from '../response/block-destination.js';

interface NsOpts {
  netns?: string;
}

function action(opts: NsOpts & { ttl?: number }): BlockDestinationAction {
  return new BlockDestinationAction({ netns: opts.netns, ttlSeconds: opts.ttl ?? DEFAULT_BLOCK_TTL_S });
}

function fail(e: unknown): void {
  process.stderr.write(`minewatch response: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
}

function formatLeft(s: number | undefined): string {
  if (s === undefined) return '-';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

const positiveInt = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--ttl: expected a positive number of seconds, got '${v}'`);
  return n;
};

export function registerResponse(program: Command): void {
  const cmd = program.command('response').description('what the response actions did: blocked addresses (nftables table inet minewatch)');

  cmd
    .command('blocked')
    .description('list the addresses block_destination has blocked, with the time left')
    .option('--json', 'print JSON')
    .option('--netns <name>', 'run nft inside this network namespace')
    .action(async (opts: NsOpts & { json?: boolean }) => {
      let list: BlockedEntry[];
      try {
        list = await action(opts).list();
      } catch (e) {
        return fail(e);
      }
      if (opts.json) {
        process.stdout.write(JSON.stringify(list.map((e) => ({ ip: e.ip, family: e.family, ttl_s: e.timeoutS ?? null, expires_in_s: e.expiresS ?? null })), null, 2) + '\n');
        return;
      }
      if (list.length === 0) {
        process.stdout.write('no blocked addresses\n');
        return;
      }
      process.stdout.write(`${'ADDRESS'.padEnd(40)} ${'TTL'.padEnd(8)} EXPIRES IN\n`);
      for (const e of list) process.stdout.write(`${e.ip.padEnd(40)} ${formatLeft(e.timeoutS).padEnd(8)} ${formatLeft(e.expiresS)}\n`);
    });

  cmd
    .command('unblock')
    .description('remove an address from the blocked set before its TTL runs out')
    .argument('<ip>', 'the IPv4 or IPv6 address')
    .option('--netns <name>', 'run nft inside this network namespace')
    .action(async (ip: string, opts: NsOpts) => {
      try {
        const removed = await action(opts).unblock(ip);
        if (!removed) {
          process.stderr.write(`minewatch response: ${ip} is not blocked\n`);
          process.exitCode = 1;
          return;
        }
        process.stdout.write(`unblocked ${ip}\n`);
      } catch (e) {
        fail(e);
      }
    });

  cmd
    .command('block')
    .description('block an address by hand, as block_destination does (restarts its TTL if already blocked)')
    .argument('<ip>', 'the IPv4 or IPv6 address')
    .option('--ttl <seconds>', `how long (default ${DEFAULT_BLOCK_TTL_S})`, positiveInt)
    .option('--netns <name>', 'run nft inside this network namespace')
    .action(async (ip: string, opts: NsOpts & { ttl?: number }) => {
      try {
        const r = await action(opts).block(ip);
        process.stdout.write(`blocked ${r.ip} for ${r.ttlSeconds} s (inet minewatch ${r.set})\n`);
      } catch (e) {
        fail(e);
      }
    });
}
