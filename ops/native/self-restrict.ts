/**
 * The service side of the privilege policy: loads the backtestr_privileges addon that
 * ops/launcher/build.ts compiles into build/ops/native/, then locks the process down.
 *
 *   lockDown()    makes the process not dumpable and stacks the seccomp filter that denies
 *                 execve, execveat and prctl(PR_SET_DUMPABLE) on every thread. Call it once, as
 *                 early as possible: services never start programs, and until it runs the
 *                 process is dumpable again, because execve reset the launcher's setting.
 *   selfStatus()  the dumpable flag, no_new_privs, seccomp mode and the Landlock evidence that
 *                 only the process itself can read.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BacktestrError } from '../../protocol/errors';

export interface SelfStatus {
  dumpable: boolean;
  noNewPrivs: boolean;
  /** prctl(PR_GET_SECCOMP): 0 none, 2 filter. */
  seccompMode: number;
  /** Landlock ABI the kernel offers (not proof of confinement); 0 when it has none. */
  landlockAbi: number;
  /** Listing "/" failed with EACCES, which under normal permissions only an LSM such as Landlock causes. */
  rootListingDenied: boolean;
}

interface PrivilegesAddon {
  lockDown(): void;
  selfStatus(): SelfStatus;
}

export const ADDON_FILE = 'backtestr_privileges.node';

/** Returns the compiled addon's path: next to this file, or under build/ when this file runs as TypeScript (ts-jest). */
export function addonPath(): string {
  if (__filename.endsWith('.js')) return path.join(__dirname, ADDON_FILE);
  return path.resolve(__dirname, '..', '..', 'build', 'ops', 'native', ADDON_FILE);
}

let loaded: PrivilegesAddon | undefined;

function addon(): PrivilegesAddon {
  if (loaded) return loaded;
  const file = addonPath();
  if (!fs.existsSync(file)) {
    throw new BacktestrError('E_INTERNAL', `privileges addon not found at ${file}: run "npm run build" on Linux with a C compiler`, { file });
  }
  loaded = require(file) as PrivilegesAddon;
  return loaded;
}

/** Throws E_INTERNAL with the errno in `details.errno` when the filter cannot be installed. */
export function lockDown(): void {
  try {
    addon().lockDown();
  } catch (error) {
    if (error instanceof BacktestrError) throw error;
    const errno = Number((error as { code?: string }).code);
    throw new BacktestrError('E_INTERNAL', `lock-down failed: ${(error as Error).message}`, Number.isInteger(errno) ? { errno } : {}, { cause: error });
  }
}

export function selfStatus(): SelfStatus {
  return addon().selfStatus();
}
