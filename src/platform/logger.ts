/** The agent's log: JSON lines on standard error (pino), so alerts alone go to standard output. */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string = process.env.MINEWATCH_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name: 'minewatch', level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
}
