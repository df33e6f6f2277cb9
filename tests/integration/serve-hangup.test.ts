/**
 * Closing the terminal of `backtestr serve` (SIGHUP to its process group) while a session is
 * unlocked: the kernel stops the services in order, so the plaintext database in the RAM
 * directory is sealed and removed, and no process is left.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { KernelClient } from '../../kernel/client';
import { ramRootFor } from '../../kernel/ram-dir';
import { runtimeDirFor } from '../../kernel/runtime-dir';
import { isProcessAlive, REPO_ROOT, SP500_CSV, temporaryProfile, TEST_PASSWORD, waitFor } from '../support/harness';

const CLI = path.join(REPO_ROOT, 'bin', 'backtestr');

test('SIGHUP to serve removes the plaintext', async () => {
  const profile = temporaryProfile();
  // detached: serve leads its own process group, as in a terminal.
  const serve = spawn(CLI, ['serve', '--profile', profile, '--json'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  serve.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    await waitFor(() => output.includes('runtimeDir'), 30_000, 'serve to report its runtime directory');
    const init = spawnSync(CLI, ['init', '--profile', profile, '--password-stdin'], { input: `${TEST_PASSWORD}\n`, encoding: 'utf8', timeout: 60_000 });
    expect(init.status).toBe(0);

    const client = await KernelClient.connect(runtimeDirFor(profile));
    await client.call('auth.unlock', { password: TEST_PASSWORD });
    await client.call('storage.importBars', { symbol: 'SPX', csv: fs.readFileSync(SP500_CSV) });
    const audit = await client.call<{ services: { name: string; pid: number | null }[] }>('kernel.audit', {});
    const pids = audit.services.map((service) => service.pid!);
    const ramDir = path.join(ramRootFor(profile, runtimeDirFor(profile))!.root, 'storage-ram');
    expect(fs.readdirSync(ramDir)).toContain('storage.duckdb');

    process.kill(-serve.pid!, 'SIGHUP');
    await waitFor(() => serve.exitCode !== null || serve.signalCode !== null, 30_000, 'serve to exit');
    await client.close();

    expect(serve.exitCode).toBe(0);
    expect(fs.existsSync(ramDir) ? fs.readdirSync(ramDir) : []).toEqual([]);
    for (const pid of pids) expect([pid, isProcessAlive(pid)]).toEqual([pid, false]);
    // The import survived the hangup: it was sealed before the services stopped.
    const results = spawnSync(CLI, ['results', '--profile', profile, '--password-stdin', '--json'], { input: `${TEST_PASSWORD}\n`, encoding: 'utf8', timeout: 60_000 });
    expect(results.status).toBe(0);
  } finally {
    if (serve.exitCode === null && serve.signalCode === null) serve.kill('SIGKILL');
    fs.rmSync(profile, { recursive: true, force: true });
  }
}, 120_000);
