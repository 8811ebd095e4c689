/**
 * A nats-server of the test's own, with JetStream and a config file (fleet mode's per-agent users
 * need an authorization block, which the shared CI broker has not): on a free loopback port, its
 * store in a temp dir kept across restart(), so a restarted server keeps its streams.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brokerBinary, freePort, restartableServer } from './brokers.js';

export interface NatsServer {
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** Why no nats-server can be started here, or undefined. */
export function natsServerUnavailable(): string | undefined {
  return brokerBinary('nats') ? undefined : 'nats-server is not installed: apt-get install nats-server (.ci/run installs it)';
}

/** `extraConfig` is appended to the config (an authorization block). */
export async function startNatsServer(extraConfig = ''): Promise<NatsServer> {
  const bin = brokerBinary('nats');
  if (!bin) throw new Error(natsServerUnavailable());
  const dir = mkdtempSync(join(tmpdir(), 'mw-p18-nats-'));
  const port = await freePort();
  const conf = join(dir, 'nats.conf');
  writeFileSync(conf, `listen: 127.0.0.1:${port}\njetstream { store_dir: ${JSON.stringify(join(dir, 'js'))} }\n${extraConfig}`);
  const { start, stop } = restartableServer('nats-server', bin, ['-c', conf], port);
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    start,
    stop,
    restart: async () => {
      await stop();
      await start();
    },
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
