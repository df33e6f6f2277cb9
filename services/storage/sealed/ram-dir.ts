/**
 * The RAM-backed private directory where the plaintext DuckDB database, its write-ahead log and
 * its spill files live while the profile is unlocked. It must be on tmpfs or ramfs, a directory
 * (not a symbolic link), owned by this process's uid and closed to everyone else (mode 0700).
 *
 * NOTE: tmpfs pages can be written to swap under memory pressure. Encrypted swap, or no swap,
 * closes that path; this check cannot see the swap configuration.
 */
import { lstat, readdir, rm, statfs } from 'node:fs/promises';
import * as path from 'node:path';
import { BacktestrError } from '../../../protocol/errors';
import { RAM_FILESYSTEM_TYPES } from '../../runtime/ram-filesystem';


/** Throws E_STORAGE unless `dir` is a private directory on a RAM-backed file system. */
export async function checkRamDir(dir: string): Promise<void> {
  let stats;
  try {
    stats = await lstat(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw ramDirError(dir, 'it does not exist');
    throw error;
  }
  if (!stats.isDirectory()) throw ramDirError(dir, 'it is not a directory');
  const uid = process.getuid?.();
  if (uid !== undefined && stats.uid !== uid) throw ramDirError(dir, `it belongs to uid ${stats.uid}, not to this process (uid ${uid})`);
  if ((stats.mode & 0o077) !== 0) throw ramDirError(dir, `its mode is ${(stats.mode & 0o777).toString(8)}, expected 700`);

  const { type } = await statfs(dir);
  if (!RAM_FILESYSTEM_TYPES.has(type)) throw ramDirError(dir, `it is not on tmpfs or ramfs (file system type 0x${type.toString(16)})`);
}

/** Removes everything inside `dir`: plaintext left by an earlier run, or by this one on close. */
export async function emptyRamDir(dir: string): Promise<number> {
  const entries = await readdir(dir);
  for (const entry of entries) await rm(path.join(dir, entry), { recursive: true, force: true });
  return entries.length;
}

function ramDirError(dir: string, reason: string): BacktestrError {
  return new BacktestrError(
    'E_STORAGE',
    `cannot keep the unlocked database in ${dir}: ${reason}; plaintext must stay in a private RAM-backed directory`,
    { reason },
  );
}
