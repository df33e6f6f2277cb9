/**
 * The CLI as a user runs it: `serve` in one process, the other commands attaching to it from
 * others, passwords on standard input, and no process left behind after SIGTERM or SIGKILL.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { isProcessAlive, REPO_ROOT, SMA_STRATEGY, SP500_CSV, temporaryProfile, TEST_PASSWORD, waitFor } from '../support/harness';

const CLI = path.join(REPO_ROOT, 'bin', 'backtestr');

function cli(args: string[], password?: string) {
  const result = spawnSync(CLI, [...args, ...(password ? ['--password-stdin'] : [])], { input: password ? `${password}\n` : '', encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

async function startServe(profile: string): Promise<ChildProcessWithoutNullStreams> {
  const serve = spawn(CLI, ['serve', '--profile', profile, '--json']);
  let output = '';
  serve.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  await waitFor(() => output.includes('runtimeDir'), 30_000, 'serve to report its runtime directory');
  return serve;
}

function servicePids(profile: string): number[] {
  const audit = cli(['audit', 'ps', '--profile', profile, '--json']);
  expect(audit.status).toBe(0);
  return JSON.parse(audit.stdout).services.map((service: { pid: number }) => service.pid);
}

describe('backtestr serve and attached commands', () => {
  test('commands attach to serve and SIGTERM leaves no process', async () => {
    const profile = temporaryProfile();
    const serve = await startServe(profile);
    try {
      expect(cli(['init', '--profile', profile, '--json'], TEST_PASSWORD).status).toBe(0);

      const imported = cli(['import', SP500_CSV, '--symbol', 'SPX', '--profile', profile, '--json'], TEST_PASSWORD);
      expect(imported.status).toBe(0);
      expect(JSON.parse(imported.stdout)).toEqual(expect.objectContaining({ symbol: 'SPX', bars: 5105 }));

      const run = cli(['run', '--strategy', SMA_STRATEGY, '--symbol', 'SPX', '--param', 'fast=20', '--param', 'slow=100', '--profile', profile, '--json'], TEST_PASSWORD);
      expect(run.status).toBe(0);
      const metrics = JSON.parse(run.stdout);
      expect(metrics.bars).toBe(5105);
      expect(metrics.fills).toBeGreaterThan(0);

      const results = cli(['results', '--profile', profile, '--json'], TEST_PASSWORD);
      expect(JSON.parse(results.stdout)).toHaveLength(1);
      // A second run, then --limit 1 lists only the newest.
      expect(cli(['run', '--strategy', SMA_STRATEGY, '--symbol', 'SPX', '--profile', profile, '--json'], TEST_PASSWORD).status).toBe(0);
      const newest = JSON.parse(cli(['results', '--limit', '1', '--profile', profile, '--json'], TEST_PASSWORD).stdout);
      expect(newest.map((entry: { params: Record<string, number> }) => entry.params)).toEqual([{}]);
      const badLimit = cli(['results', '--limit', '0', '--profile', profile, '--json'], TEST_PASSWORD);
      expect(JSON.parse(badLimit.stdout).error.code).toBe('E_INVALID_PARAMS');

      const wrong = cli(['results', '--profile', profile, '--json'], 'Wrong-password-123!');
      expect(wrong.status).toBe(1);
      expect(JSON.parse(wrong.stdout).error.code).toBe('E_WRONG_PASSWORD');
      expect(wrong.stderr).not.toContain('Wrong-password-123!');

      const pids = servicePids(profile);
      expect(pids).toHaveLength(5);
      serve.kill('SIGTERM');
      await new Promise((resolve) => serve.once('exit', resolve));
      expect(serve.exitCode).toBe(0);
      for (const pid of pids) expect(isProcessAlive(pid)).toBe(false);
    } finally {
      serve.kill('SIGKILL');
    }
  });

  test('services exit when the kernel is killed', async () => {
    const profile = temporaryProfile();
    const serve = await startServe(profile);
    const pids = servicePids(profile);
    serve.kill('SIGKILL');
    await waitFor(() => pids.every((pid) => !isProcessAlive(pid)), 10_000, 'services to exit after the kernel died');

    // The profile is usable again by a new kernel: the stale pid file does not block it.
    const restarted = await startServe(profile);
    restarted.kill('SIGTERM');
    await new Promise((resolve) => restarted.once('exit', resolve));
  });

  test('audit ps without a kernel explains what to do', () => {
    const result = cli(['audit', 'ps', '--profile', temporaryProfile()]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('E_SERVICE_UNAVAILABLE');
    expect(result.stderr).toContain('backtestr serve');
  });

  test('import rejects a device before asking for a password', () => {
    const result = cli(['import', '/dev/zero', '--symbol', 'X', '--profile', temporaryProfile()]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('E_INVALID_PARAMS');
    expect(result.stderr).toContain('not a regular file');
  });

  test('run rejects an oversized strategy file', () => {
    const big = path.join(temporaryProfile(), 'big.js');
    fs.writeFileSync(big, Buffer.alloc(2 * 1024 * 1024, 0x20));
    const result = cli(['run', '--strategy', big, '--symbol', 'X', '--profile', temporaryProfile(), '--json']);
    expect(result.status).toBe(1);
    expect(JSON.parse(result.stdout).error).toEqual(expect.objectContaining({ code: 'E_INVALID_PARAMS', details: expect.objectContaining({ maxBytes: 1024 * 1024 }) }));
  });
});
