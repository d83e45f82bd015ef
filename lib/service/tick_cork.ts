/**
 * Frames written in one tick leave in one writev: the first write of a tick corks the socket and
 * a nextTick uncorks it. Pipelined small frames (requests on the client, answers on the server)
 * otherwise cost one system call each.
 */
import type { Socket } from 'node:net';

export class TickCork {
  private corked = false;
  /** Made once: a closure per tick is garbage the page service's hot path can do without. */
  private readonly release = (): void => {
    // Still marked corked: what beforeUncork writes joins this writev instead of corking anew.
    this.beforeUncork?.();
    this.corked = false;
    this.socket.uncork();
  };

  /** `beforeUncork` writes what its owner gathered during the tick, so it joins the same writev. */
  constructor(
    private readonly socket: Socket,
    private readonly beforeUncork?: () => void,
  ) {}

  /** Call before each write. */
  hold(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(this.release);
  }
}
