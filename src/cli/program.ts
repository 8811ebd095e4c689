/** The `minewatch` command's program: parses flags and hands off to the modules that do the work. */
import { Command } from 'commander';
import { registerDoctor } from './doctor.js';
import { registerAlerts } from './alerts.js';
import { registerFields } from './fields.js';
import { registerK8s } from './k8s.js';
import { registerGithub } from './github.js';
import { registerReplay } from './replay.js';
import { registerReplayLive } from './replay-live.js';
import { registerResponse } from './response.js';
import { registerRules } from './rules.js';
import { registerRun } from './run.js';
import { registerServer } from './server.js';
import { packageVersion } from '../platform/version.js';
import { registerVersion } from './version.js';
import { registerWhack } from './whack.js';

const program = new Command();
program
  .name('minewatch')
  .description('Catch and stop cryptojacking on Linux hosts, containers and Kubernetes (Falco-compatible rules)')
  .version(packageVersion(), '-V, --version')
  .showHelpAfterError();

registerRun(program);
registerServer(program);
registerReplay(program);
registerReplayLive(program);
registerRules(program);
registerFields(program);
registerResponse(program);
registerAlerts(program);
registerVersion(program);
registerWhack(program);
registerK8s(program);
registerGithub(program);
registerDoctor(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`minewatch: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(70);
});
