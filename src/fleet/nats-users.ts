/**
 * The nats-server `authorization` block fleet mode needs: one user per agent, allowed to publish
 * only on its own subject and to read only its own inbox (its PubAcks), and one user for the
 * servers (docs/fleet.md shows it), used by the tests and the bench to configure the real
 * nats-server they start.
 */
import { hostInboxPrefix, hostSubject } from '../alerts/fleet-nats.js';

export interface AgentUser {
  hostname: string;
  user: string;
  password: string;
}

export interface ServerUser {
  user: string;
  password: string;
}

/** A string as nats-server's config reads it (double-quoted, JSON escapes). */
const q = (s: string): string => JSON.stringify(s);

/**
 * The authorization block. The servers' user may use the JetStream API (create the stream and the
 * consumer, pull, ack) and its inboxes, and publish nowhere else; agents get exactly their subject.
 */
export function natsAuthorization(prefix: string, agents: AgentUser[], server: ServerUser): string {
  const lines = ['authorization {', '  users = ['];
  lines.push(`    { user: ${q(server.user)}, password: ${q(server.password)}, permissions: { publish: { allow: ["$JS.API.>", "$JS.ACK.>"] }, subscribe: { allow: ["_INBOX.>"] } } }`);
  for (const a of agents) {
    lines.push(`    { user: ${q(a.user)}, password: ${q(a.password)}, permissions: { publish: { allow: [${q(hostSubject(prefix, a.hostname))}] }, subscribe: { allow: [${q(`${hostInboxPrefix(a.hostname)}.>`)}] } } }`);
  }
  lines.push('  ]', '}');
  return lines.join('\n') + '\n';
}
