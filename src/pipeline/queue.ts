/**
 * A bounded FIFO between the sources and the engine. Sources never wait on it: when it is full an
 * event is dropped and counted (as Falco's drop stats), so a burst can never stall the host.
 */
export class BoundedQueue<T> {
  private buf: (T | undefined)[];
  private head = 0;
  private size = 0;
  /** Items refused because the queue was full, since start. */
  dropped = 0;
  /** Items accepted, since start. */
  accepted = 0;

  constructor(readonly capacity: number) {
    this.buf = new Array<T | undefined>(capacity);
  }

  get length(): number {
    return this.size;
  }

  push(item: T): boolean {
    if (this.size === this.capacity) {
      this.dropped++;
      return false;
    }
    this.buf[(this.head + this.size) % this.capacity] = item;
    this.size++;
    this.accepted++;
    return true;
  }

  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.buf[this.head];
    this.buf[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.size--;
    return item;
  }
}
