/**
 * Alerts appended to a file, JSON lines or Falco text lines. The folder is created; the file is
 * reopened when it was moved or removed (log rotation), so alerts never go to a rotated file.
 */
import { mkdir, open, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AlertMessage } from '../types.js';
import { FilteredOutput, type OutputOptions, RetryableDeliveryError } from './base.js';
import { type LineFormat, renderLine } from './render.js';

/** How often the path is checked against the open file (a rename by logrotate, say). */
const ROTATION_CHECK_MS = 1000;

export class FileOutput extends FilteredOutput {
  private fh: FileHandle | undefined;
  private opening: Promise<FileHandle> | undefined;
  private ino = 0;
  private checkedAt = 0;
  private readonly path: string;
  private readonly format: LineFormat;

  constructor(opts: OutputOptions & { path: string; format: LineFormat }) {
    super(opts);
    this.path = opts.path;
    this.format = opts.format;
  }

  private async handle(): Promise<FileHandle> {
    const now = Date.now();
    if (this.fh && now - this.checkedAt >= ROTATION_CHECK_MS) {
      this.checkedAt = now;
      const still = await stat(this.path).then((s) => s.ino === this.ino, () => false);
      if (!still) await this.closeHandle();
    }
    if (this.fh) return this.fh;
    // Concurrent sends share one open.
    this.opening ??= this.openFile().finally(() => (this.opening = undefined));
    return this.opening;
  }

  private async openFile(): Promise<FileHandle> {
    try {
      await mkdir(dirname(this.path), { recursive: true });
      const fh = await open(this.path, 'a', 0o640);
      this.ino = (await fh.stat()).ino;
      this.checkedAt = Date.now();
      this.fh = fh;
      return fh;
    } catch (e) {
      throw new RetryableDeliveryError(`${this.where}.path: cannot open ${this.path} for appending: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; check the folder exists or can be created and is writable`);
    }
  }

  protected async deliver(msg: AlertMessage): Promise<void> {
    const fh = await this.handle();
    try {
      await fh.appendFile(renderLine(msg, this.format) + '\n');
    } catch (e) {
      await this.closeHandle();
      throw new RetryableDeliveryError(`${this.where}: cannot write ${this.path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }

  private async closeHandle(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close().catch(() => undefined);
  }

  close(): Promise<void> {
    return this.closeHandle();
  }
}
