/**
 * Runs async tasks one at a time, in arrival order. Auth serialises every state change through
 * it, so that parallel unlock requests cannot read the same failure count and each get a free
 * attempt; the keyring, the vault, storage's profile keys and the kernel's password operations
 * use it so that two changes of one file never interleave.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    // The next task waits for this one whether it succeeded or failed; the caller still gets the rejection.
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
