/**
 * Frames written in one tick leave in one writev: the first write of a tick corks the socket and
 * a nextTick uncorks it. Pipelined small frames (the client's requests) otherwise cost one system
 * call each. (The server gathers its answers into one buffer per tick instead: page_server.ts.)
 */
import type { Socket } from 'node:net';

export class TickCork {
  private corked = false;
  /** Made once: a closure per tick is garbage the page service's hot path can do without. */
  private readonly release = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  constructor(private readonly socket: Socket) {}

  /** Call before each write. */
  hold(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(this.release);
  }
}
