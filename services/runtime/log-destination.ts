/**
 * A pino destination for process logs on stderr that never blocks and never hangs at exit.
 *
 * pino's default destination (sonic-boom 4) flushes synchronously at exit and retries a failed
 * write in a sleep loop; with EPIPE, which is what a service gets once the kernel that reads its
 * stderr is gone, that loop never ends and the process cannot exit. Here each line is one
 * `writeSync`; a line that cannot be written at once (EAGAIN from a full pipe, EPIPE from a dead
 * reader) is dropped and counted, because logs are diagnostics and must not hold up the service.
 */
import fs from 'node:fs';

export interface StderrDestination {
  write(line: string): void;
  /** Lines dropped because stderr was full or closed. */
  readonly dropped: number;
}

export function stderrDestination(fd = 2): StderrDestination {
  let dropped = 0;
  return {
    write(line: string): void {
      try {
        fs.writeSync(fd, line);
      } catch {
        // EAGAIN or EPIPE: drop the line, as explained above; the count is kept for diagnostics.
        dropped++;
      }
    },
    get dropped() {
      return dropped;
    },
  };
}
