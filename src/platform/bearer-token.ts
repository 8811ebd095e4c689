/** Bearer tokens compared in constant time: both sides hashed to 32 bytes first, so neither the content nor the length of the configured token leaks through response timing. */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** A token held as its digest; `matches` is constant-time in the candidate's content and length. */
export class BearerToken {
  private readonly want: Buffer;

  constructor(token: string) {
    this.want = digest(token);
  }

  matches(candidate: string | undefined): boolean {
    if (candidate === undefined) return false;
    return timingSafeEqual(digest(candidate), this.want);
  }
}
