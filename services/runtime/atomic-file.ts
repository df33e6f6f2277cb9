/**
 * Crash-safe replacement of small state files (auth's profile and lockout, storage's keyring and
 * vault): write a temporary file (mode 0600), fsync it, rename it over the target, fsync the
 * directory. rename(2) is atomic on POSIX file systems, so after a crash at any point the target
 * is either the complete old content or the complete new content. The directory fsync makes the
 * new entry survive a power loss as well.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { BacktestrError } from '../../protocol/errors';

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/** Creates `dir` if needed and forces mode 0700, also on a directory that already existed. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  await fs.chmod(dir, PRIVATE_DIR_MODE);
}

/** Steps of one atomic write, in order; reported to `onStep` right after each completes. */
export type AtomicWriteStep = 'temp-written' | 'temp-synced' | 'renamed' | 'dir-synced';

export interface AtomicWriteOptions {
  /** Called synchronously after each step. Crash tests use it to kill the process at an exact point. */
  onStep?: (step: AtomicWriteStep) => void;
  /**
   * When true, fails with an EEXIST error instead of replacing an existing file. The final step
   * is then link(2), which never overwrites, so two writers cannot both succeed.
   */
  exclusive?: boolean;
}

const TEMP_SUFFIX = '.tmp';

function tempPrefix(filePath: string): string {
  return `.${path.basename(filePath)}.`;
}

/** Replaces (or, with `exclusive`, creates) `filePath` so that readers see the old or the new file, never a partial one. */
export async function writeFileAtomic(filePath: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const dir = path.dirname(filePath);
  const tempPath = path.join(dir, `${tempPrefix(filePath)}${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);

  const handle = await fs.open(tempPath, 'wx', PRIVATE_FILE_MODE);
  try {
    await handle.writeFile(data);
    options.onStep?.('temp-written');
    await handle.sync();
    options.onStep?.('temp-synced');
  } finally {
    await handle.close();
  }

  try {
    if (options.exclusive) {
      await fs.link(tempPath, filePath);
      await fs.unlink(tempPath);
    } else {
      await fs.rename(tempPath, filePath);
    }
  } catch (error) {
    await fs.rm(tempPath, { force: true });
    throw error;
  }
  options.onStep?.('renamed');

  await syncDir(dir);
  options.onStep?.('dir-synced');
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Deletes temporary files that a crashed write of `filePath` left behind. They must not linger:
 * a leftover keyring temp file contains the data keys wrapped under a password that may since have
 * been changed. Returns how many were removed.
 */
export async function removeStaleTempFiles(filePath: string): Promise<number> {
  const dir = path.dirname(filePath);
  const prefix = tempPrefix(filePath);
  let removed = 0;
  for (const name of await fs.readdir(dir)) {
    if (name.startsWith(prefix) && name.endsWith(TEMP_SUFFIX)) {
      await fs.rm(path.join(dir, name), { force: true });
      removed++;
    }
  }
  return removed;
}

/**
 * Reads a whole file, or returns null when it does not exist; caps the size before allocating.
 * A link, directory or special file in its place is E_INTEGRITY (O_NOFOLLOW and O_NONBLOCK, so a
 * planted FIFO cannot block the read), and a file this process may not read is E_STORAGE.
 */
export async function readFileCapped(filePath: string, maxBytes: number): Promise<Uint8Array | null> {
  const name = path.basename(filePath);
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(filePath, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') throw new BacktestrError('E_INTEGRITY', `${name} is a symbolic link, not a regular file; move it away and restore the file from a backup`, { file: name, reason: 'a symbolic link' });
    if (code === 'EACCES' || code === 'EPERM') {
      throw new BacktestrError('E_STORAGE', `cannot read ${name}: permission denied; a file restored by another user must belong to the profile's owner again (restarting the kernel repairs ownership)`, { file: name, reason: 'permission denied' });
    }
    throw error;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) {
      throw new BacktestrError('E_INTEGRITY', `${name} is ${stats.isDirectory() ? 'a directory' : 'a special file'}, not a regular file; move it away and restore the file from a backup`, { file: name, reason: 'not a regular file' });
    }
    const { size } = stats;
    if (size > maxBytes) {
      throw new BacktestrError('E_INTEGRITY', `${path.basename(filePath)} is ${size} bytes, the limit is ${maxBytes}: the file is corrupt or was replaced`, {
        file: path.basename(filePath),
      });
    }
    return new Uint8Array(await handle.readFile());
  } finally {
    await handle.close();
  }
}
