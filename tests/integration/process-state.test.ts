/** isLiveProcess on real processes: running, exited, and a zombie that kill(pid, 0) still finds. */
import { spawn } from 'node:child_process';
import { isLiveProcess } from '../../kernel/process-state';
import { waitFor } from '../support/harness';

test('zombie counts as not running', async () => {
  // The shell starts a short sleep, prints its pid and becomes a long sleep, which never reaps
  // it: the short sleep stays a zombie after it ends.
  const parent = spawn('sh', ['-c', 'sleep 0.2 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let output = '';
  parent.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    await waitFor(() => output.includes('\n'), 5_000, 'the child pid');
    const pid = Number(output.trim());
    expect(isLiveProcess(pid)).toBe(true);

    await waitFor(() => !isLiveProcess(pid), 5_000, 'the child to end');
    // kill(pid, 0) still succeeds: the pid is a zombie, which isLiveProcess must not count.
    expect(() => process.kill(pid, 0)).not.toThrow();
    expect(isLiveProcess(parent.pid!)).toBe(true);
  } finally {
    parent.kill('SIGKILL');
  }
  await waitFor(() => !isLiveProcess(parent.pid!), 5_000, 'the parent to end');
});
