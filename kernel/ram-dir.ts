/**
 * The RAM-backed directory where a service may keep plaintext while the profile is unlocked
 * (the storage service's unlocked DuckDB database). It is the kernel's runtime directory when
 * that is on tmpfs (an $XDG_RUNTIME_DIR usually is), else /dev/shm/backtestr-UID/PROFILE-KEY.
 * Each service that needs one gets its own subdirectory, mode 0700, owned by the service's uid.
 *
 * When neither location is RAM-backed the kernel passes no directory and the service refuses
 * to unlock: plaintext must not fall back to persistent disk.
 */
import fs from 'node:fs';
import path from 'node:path';
import { RAM_FILESYSTEM_TYPES } from '../services/runtime/ram-filesystem';
import { ensurePrivateDirectory, profileKeyFor } from './runtime-dir';

const SHARED_MEMORY_DIR = '/dev/shm';

export function isRamBacked(dir: string): boolean {
  try {
    return RAM_FILESYSTEM_TYPES.has(fs.statfsSync(dir).type);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/**
 * Returns the private RAM-backed root for `profileDir`, creating it if needed, or undefined
 * when this machine offers none. The second element lists the directories the kernel created
 * above the root, which service uids must be able to search when the kernel runs as root.
 */
export function ramRootFor(profileDir: string, runtimeDir: string): { root: string; parents: string[] } | undefined {
  if (isRamBacked(runtimeDir)) return { root: runtimeDir, parents: [] };
  if (!isRamBacked(SHARED_MEMORY_DIR)) return undefined;
  const user = path.join(SHARED_MEMORY_DIR, `backtestr-${process.getuid?.() ?? 'user'}`);
  const root = path.join(user, profileKeyFor(profileDir));
  ensurePrivateDirectory(user);
  ensurePrivateDirectory(root);
  return { root, parents: [user] };
}

/** Returns the RAM directory of `service` under `root`. */
export function serviceRamDir(root: string, service: string): string {
  return path.join(root, `${service}-ram`);
}
