/**
 * The kernel's private runtime directory: the nanomsg ipc socket files and the control key live
 * here. It sits under $XDG_RUNTIME_DIR (a per-user tmpfs on most desktops) or else the system
 * temp directory. Every level we create is mode 0700 and owned by us, and a directory that
 * another user owns or could enter is rejected rather than used.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BacktestrError } from '../protocol/errors';

export function ensurePrivateDirectory(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stat = fs.lstatSync(dir);
  const uid = process.getuid?.() ?? -1;
  if (!stat.isDirectory() || stat.isSymbolicLink()) throw new BacktestrError('E_INTERNAL', `runtime path ${dir} is not a directory`);
  if (uid >= 0 && stat.uid !== uid) {
    throw new BacktestrError('E_INTERNAL', `runtime directory ${dir} belongs to uid ${stat.uid}, not to us (uid ${uid}); another user may have created it, so set XDG_RUNTIME_DIR to a private directory of yours`);
  }
  // Search by others (0711) is allowed: as root, the kernel grants it so that services running
  // under their own uids reach their sockets (kernel/privileges/service-files.ts).
  if ((stat.mode & 0o066) !== 0) throw new BacktestrError('E_INTERNAL', `runtime directory ${dir} has mode ${(stat.mode & 0o777).toString(8)}; expected 700 or 711`);
}

/** Returns the runtime directory of the kernel serving `profileDir`, creating it if needed. */
export function runtimeDirFor(profileDir: string): string {
  const base = process.env.XDG_RUNTIME_DIR && path.isAbsolute(process.env.XDG_RUNTIME_DIR) ? process.env.XDG_RUNTIME_DIR : os.tmpdir();
  const user = path.join(base, `backtestr-${process.getuid?.() ?? 'user'}`);
  const dir = path.join(user, profileKeyFor(profileDir));
  ensurePrivateDirectory(user);
  ensurePrivateDirectory(dir);
  return dir;
}

/** Names a profile by a short hash of its path, because Unix socket paths are limited to 107 bytes. */
export function profileKeyFor(profileDir: string): string {
  return crypto.createHash('sha256').update(path.resolve(profileDir)).digest('hex').slice(0, 16);
}

/** File in the runtime directory that contains the serving kernel's pid. */
export const KERNEL_PID_FILE = 'kernel.pid';

export function endpointIn(runtimeDir: string, name: string): string {
  return `ipc://${path.join(runtimeDir, `${name}.ipc`)}`;
}
