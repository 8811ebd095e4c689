/** Alerts on standard output, as Falco prints them (text line or JSON), one a line. */
import type { Writable } from 'node:stream';
import type { AlertMessage } from '../types.js';
import { FilteredOutput, type OutputOptions } from './base.js';
import { type LineFormat, renderLine } from './render.js';

export class StdoutOutput extends FilteredOutput {
  constructor(opts: OutputOptions & { format: LineFormat; stream?: Writable }) {
    super(opts);
    this.format = opts.format;
    this.stream = opts.stream ?? process.stdout;
  }

  private readonly format: LineFormat;
  private readonly stream: Writable;

  protected deliver(msg: AlertMessage): Promise<void> {
    // Resolves once the line left our buffer (a pipe that is full holds the promise back).
    return new Promise((resolve, reject) => {
      this.stream.write(renderLine(msg, this.format) + '\n', (err) => (err ? reject(err) : resolve()));
    });
  }

  /** The line rendered and dropped (AlertPipeline.warm). */
  warm(msg: AlertMessage): void {
    if (this.wants(msg)) renderLine(msg, this.format);
  }

  async close(): Promise<void> {}
}
