/**
 * Keeps the storage directory private to the user that runs the service: the directory and any
 * directory below it mode 0700, every file 0600. DuckDB creates its files (the database, its
 * write-ahead log, temporary spill files) with the process umask, so start() sets the umask to
 * 0o077 first and this module then checks and repairs what is on disk.
 */
import { chmod, lstat, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { BacktestrError } from '../../protocol/errors';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** Permission bits for group and others, which must all be clear. */
const GROUP_OTHER_BITS = 0o077;

/**
 * Creates `dir` (mode 0700) if it is missing and makes sure it is a real directory, not a
 * symbolic link that could send the database somewhere else.
 */
export async function preparePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const stats = await lstat(dir);
  if (!stats.isDirectory()) {
    throw new BacktestrError('E_STORAGE', 'storage directory is not a directory');
  }
  await chmod(dir, PRIVATE_DIR_MODE);
}

/**
 * Sets mode 0700 on `dir` and its subdirectories and 0600 on every file below it, then checks
 * the result. A symbolic link or any other special file is an error, because nothing but DuckDB
 * should write here and DuckDB creates only regular files and directories. Returns how many
 * entries had looser modes and were repaired.
 */
export async function enforcePrivateModes(dir: string, log: Logger, relative = ''): Promise<number> {
  let repaired = 0;

  const dirStats = await lstat(dir);
  if (!dirStats.isDirectory()) {
    throw new BacktestrError('E_STORAGE', 'storage directory is not a directory');
  }
  if ((dirStats.mode & 0o777) !== PRIVATE_DIR_MODE) {
    await chmod(dir, PRIVATE_DIR_MODE);
    repaired++;
  }

  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const stats = await lstat(path);
    if (stats.isDirectory()) {
      repaired += await enforcePrivateModes(path, log, `${relative}${name}/`);
      continue;
    }
    if (!stats.isFile()) {
      const kind = stats.isSymbolicLink() ? 'a symbolic link' : 'a special file';
      throw new BacktestrError(
        'E_INTEGRITY',
        `storage entry ${relative}${name} is ${kind}, not a regular file; move it out of the profile and restore the real file from a backup`,
        { file: `${relative}${name}`, reason: kind },
      );
    }
    if ((stats.mode & 0o777) !== PRIVATE_FILE_MODE) {
      log.warn({ entry: name, mode: (stats.mode & 0o777).toString(8) }, 'storage file had a looser mode than 0600, repaired');
      await chmod(path, PRIVATE_FILE_MODE);
      repaired++;
    }
  }

  const after = await lstat(dir);
  if ((after.mode & GROUP_OTHER_BITS) !== 0) {
    throw new BacktestrError('E_STORAGE', 'storage directory mode could not be set to 0700');
  }
  return repaired;
}
