/**
 * File ownership that a service needs before it starts. As a normal user nothing changes: the
 * service keeps the kernel's uid. As root each service runs under its own uid, so the kernel
 * must, before the launch:
 *   - create the state directory (mode 0700) and give it and its contents to the service's uid;
 *   - give the service's ipc socket file to that uid after binding it (connect needs write
 *     permission on the socket file);
 *   - let the service uids search (but not list) every directory above those two: the profile
 *     directory and the runtime directories get mode 0711, and an ancestor the kernel does not
 *     own must already allow search by others.
 * Landlock keeps each service out of the other services' directories whatever the modes allow.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BacktestrError } from '../../protocol/errors';
import { type ServicePrivilegePolicy, serviceId } from './policy-table';

const STATE_DIR_MODE = 0o700;
/** Search for everyone, list and write only for the owner. */
const TRAVERSABLE_DIR_MODE = 0o711;

/**
 * Creates `stateDir` if needed and, as root, hands it and everything in it to the service's uid
 * and gid. Symbolic links are changed themselves (lchown), never followed.
 */
export function prepareStateDirectory(policy: ServicePrivilegePolicy, stateDir: string, runningAsRoot: boolean): void {
  fs.mkdirSync(stateDir, { recursive: true, mode: STATE_DIR_MODE });
  fs.chmodSync(stateDir, STATE_DIR_MODE);
  if (!runningAsRoot) return;

  const id = serviceId(policy);
  const stack = [stateDir];
  while (stack.length > 0) {
    const current = stack.pop()!;
    const stat = fs.lstatSync(current);
    if (stat.uid !== id || stat.gid !== id) fs.lchownSync(current, id, id);
    if (stat.isDirectory()) {
      for (const entry of fs.readdirSync(current)) stack.push(path.join(current, entry));
    }
  }
}

/**
 * Creates the service's RAM directory (mode 0700) and removes anything in it: plaintext that a
 * killed service left behind must not outlive the restart. As root, hands it to the service's
 * uid. Returns how many entries it removed.
 */
export function prepareRamDirectory(policy: ServicePrivilegePolicy, ramDir: string, runningAsRoot: boolean): number {
  fs.mkdirSync(ramDir, { recursive: true, mode: STATE_DIR_MODE });
  fs.chmodSync(ramDir, STATE_DIR_MODE);
  const stale = fs.readdirSync(ramDir);
  for (const entry of stale) fs.rmSync(path.join(ramDir, entry), { recursive: true, force: true });
  if (runningAsRoot) fs.lchownSync(ramDir, serviceId(policy), serviceId(policy));
  return stale.length;
}

/** As root, gives the socket file that the kernel bound for the service to the service's uid. */
export function handOverSocketFile(policy: ServicePrivilegePolicy, socketPath: string, runningAsRoot: boolean): void {
  if (!runningAsRoot) return;
  const id = serviceId(policy);
  fs.lchownSync(socketPath, id, id);
}

/**
 * As root, makes `dirs` (the kernel's own directories: the profile and the runtime directories)
 * searchable by the service uids with mode 0711, then checks that every ancestor of them allows
 * search by others. Throws E_INVALID_PARAMS naming the first ancestor that does not, because
 * the kernel must not loosen a directory it did not create (for example /root, mode 0700).
 */
export function grantServiceTraversal(dirs: readonly string[], runningAsRoot: boolean): void {
  if (!runningAsRoot) return;
  for (const dir of dirs) {
    const resolved = path.resolve(dir);
    fs.chmodSync(resolved, TRAVERSABLE_DIR_MODE);
    const blocked = firstUnsearchableAncestor(path.dirname(resolved), dirs.map((entry) => path.resolve(entry)));
    if (blocked !== undefined) {
      throw new BacktestrError(
        'E_INVALID_PARAMS',
        `service processes run under their own uids and cannot reach ${resolved}, because ${blocked} does not allow search by other users; choose a profile directory outside it`,
        { dir: resolved, blocked },
      );
    }
  }
}

/**
 * As root, checks that the service uids can reach `dirs` (the install directory and
 * node_modules), which the kernel must not loosen itself. Throws E_INVALID_PARAMS naming the
 * first directory on the way that other users may not search.
 */
export function assertReachableByServices(dirs: readonly string[], runningAsRoot: boolean): void {
  if (!runningAsRoot) return;
  for (const dir of dirs) {
    const resolved = fs.realpathSync(dir);
    const blocked = firstUnsearchableAncestor(resolved, []);
    if (blocked !== undefined) {
      throw new BacktestrError(
        'E_INVALID_PARAMS',
        `service processes run under their own uids and cannot reach ${resolved}, because ${blocked} does not allow search by other users; give it mode 0755 or install elsewhere`,
        { dir: resolved, blocked },
      );
    }
  }
}

function firstUnsearchableAncestor(start: string, granted: readonly string[]): string | undefined {
  let current = start;
  for (;;) {
    if (!granted.includes(current)) {
      const mode = fs.statSync(current).mode;
      if ((mode & 0o001) === 0) return current;
    }
    const parent = path.dirname(current);
    if (parent === current) return undefined;
    current = parent;
  }
}
