/**
 * Frames written in one tick leave in one writev: the first write of a tick corks the socket and
 * a nextTick uncorks it. Pipelined small frames (requests on the client, answers on the server)
 * otherwise cost one system call each.
 */
import type { Socket } from 'node:net';

export class TickCork {
  private corked = false;

  constructor(private readonly socket: Socket) {}

  /** Call before each write. */
  hold(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(() => {
      this.corked = false;
      this.socket.uncork();
    });
  }
}
