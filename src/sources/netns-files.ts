/**
 * The socket tables and counters of one network namespace, read through files held open.
 *
 * Why held: opening /proc/PID/net/<file> is a path walk that the kernel never caches (the net
 * directory's dentries are revalidated on every lookup, since a task can change namespace), and
 * at the connections poller's pace (4 polls a second) the open and close cost as much as the read
 * itself: on an idle 2-core host, 170–200 µs per file opened anew against 90–110 µs re-read
 * through a held descriptor (issue 16: the proc connector's idle cost). A held file is also bound
 * to the namespace, not to the pid it was opened through: the kernel resolves the namespace at
 * open and the file keeps a reference to it, so it goes on reading that namespace after the pid
 * exits, and no per-poll readlink is needed to check that a pid still lives there.
 *
 * The price: one reference to the namespace while it is held, so a namespace whose last process
 * has exited lives until the poller notices (its next listing of /proc, about a second) and
 * closes the files. Five descriptors per namespace.
 *
 * Opening checks the pid's namespace link after the files are open: a pid that exited, was reused
 * or moved (setns) between listing and opening would bind the files to another namespace, whose
 * sockets would be reported under this one's pids. The caller reopens them now and then (a
 * process that moved right after the check and back is then caught at the next reopening).
 */
import { closeSync, openSync, readlinkSync, readSync } from 'node:fs';

export type NetFile = 'snmp' | 'tcp' | 'tcp6' | 'udp' | 'udp6';
const FILES: readonly NetFile[] = ['snmp', 'tcp', 'tcp6', 'udp', 'udp6'];

const CHUNK = Buffer.allocUnsafe(64 * 1024);

/**
 * The whole of a seq_file such as /proc/net/tcp, read from `fd` at offset 0 (pread: the kernel
 * walks the table again from its start), or read from `path` opened for this read alone.
 *
 * Each read(2) of a seq_file runs the kernel's table walk from where the last stopped, and a read
 * past the end starts it again from the top: for TCP that walk visits every bucket of the
 * node-wide established hash (262144 on a 23 GB host; every namespace shares it), about 2 ms, so
 * the usual read-until-0 costs two walks. A seq_file read returns at least a page minus one record
 * unless the walk has ended, so a read shorter than 3 KiB (records are under 200 bytes) is the end
 * and the extra read is skipped. Regular files (tests) end the same way or with a read of 0.
 */
export function readSeqFd(fd: number): string {
  let out = '';
  let pos = 0;
  for (;;) {
    const n = readSync(fd, CHUNK, 0, CHUNK.length, pos);
    if (n <= 0) break;
    pos += n;
    out += CHUNK.toString('latin1', 0, n);
    if (n < 3072) break;
  }
  return out;
}

/** readSeqFd of a file opened for this read alone. Throws when it cannot be opened. */
export function readSeqFile(path: string): string {
  const fd = openSync(path, 'r');
  try {
    return readSeqFd(fd);
  } finally {
    closeSync(fd);
  }
}

function openQuiet(path: string): number | undefined {
  try {
    return openSync(path, 'r');
  } catch {
    return undefined;
  }
}

export class NetnsFiles {
  private constructor(
    private readonly fds: Map<NetFile, number>,
    /** When they were opened (the caller's clock, ms). */
    readonly openedAt: number,
  ) {}

  /**
   * The files of namespace `ns` ("4026531840"), opened through `pid`; undefined when its tcp table
   * cannot be opened (the pid is gone) or the pid's namespace link does not name `ns` once they
   * are open. snmp, tcp6, udp and udp6 may be missing (IPv6 off, a test's fake /proc): read('')
   * then.
   */
  static open(procRoot: string, pid: number, ns: string, nowMs: number): NetnsFiles | undefined {
    const base = `${procRoot}/${pid}/net/`;
    const fds = new Map<NetFile, number>();
    for (const f of FILES) {
      const fd = openQuiet(base + f);
      if (fd !== undefined) fds.set(f, fd);
      else if (f === 'tcp') break;
    }
    let link: string | undefined;
    if (fds.has('tcp')) {
      try {
        link = readlinkSync(`${procRoot}/${pid}/ns/net`);
      } catch {
        link = undefined;
      }
    }
    if (link !== `net:[${ns}]`) {
      for (const fd of fds.values()) closeSync(fd);
      return undefined;
    }
    return new NetnsFiles(fds, nowMs);
  }

  /** The file's text now; '' when it was not there at open. Throws when the read fails. */
  read(file: NetFile): string {
    const fd = this.fds.get(file);
    return fd === undefined ? '' : readSeqFd(fd);
  }

  /** Whether the file was there at open. */
  has(file: NetFile): boolean {
    return this.fds.has(file);
  }

  close(): void {
    for (const fd of this.fds.values()) {
      try {
        closeSync(fd);
      } catch {
        /* already closed */
      }
    }
    this.fds.clear();
  }
}
