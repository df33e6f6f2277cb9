/**
 * Reads the channel secret that the kernel writes to an inherited pipe. The secret never passes
 * through argv, the environment or a file: the kernel writes it once to the child's fd 3 and
 * closes its end, and the child reads it once and closes its own.
 */
import fs from 'node:fs';
import { CHANNEL_SECRET_SIZE } from '../../protocol/keys';
import { BacktestrError } from '../../protocol/errors';

export const SECRET_FD = 3;

export function readSecretFromPipe(fd = SECRET_FD): Uint8Array {
  const secret = new Uint8Array(CHANNEL_SECRET_SIZE);
  let filled = 0;
  try {
    while (filled < CHANNEL_SECRET_SIZE) {
      const count = fs.readSync(fd, secret, filled, CHANNEL_SECRET_SIZE - filled, null);
      if (count === 0) break;
      filled += count;
    }
  } finally {
    fs.closeSync(fd);
  }
  if (filled !== CHANNEL_SECRET_SIZE) {
    secret.fill(0);
    throw new BacktestrError('E_INTERNAL', `expected a ${CHANNEL_SECRET_SIZE}-byte channel secret on fd ${fd}, got ${filled} bytes`);
  }
  return secret;
}
