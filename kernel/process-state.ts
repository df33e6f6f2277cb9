/** Whether a pid names a running process, for the kernel's pid files and the client's watch. */
import fs from 'node:fs';

/**
 * True while `pid` exists and is not a zombie. A killed kernel stays a zombie until its parent
 * reaps it, which took about 2 s under some init processes, and kill(pid, 0) succeeds on a zombie.
 */
export function isLiveProcess(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return false;
    // Without /proc (not Linux) the kill check above is all there is.
    return true;
  }
  // The state letter follows the command name, which is in parentheses and may contain spaces.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}
