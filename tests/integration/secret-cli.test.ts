/**
 * `backtestr secret`, `passwd` and `rekey` as a user runs them against `backtestr serve`, with the
 * production key derivation. Service logs go to serve's stderr (BACKTESTR_DEBUG=1), so the test
 * can check that no secret value reaches them.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, temporaryProfile, TEST_PASSWORD, waitFor } from '../support/harness';

const CLI = path.join(REPO_ROOT, 'bin', 'backtestr');
const NEW_PASSWORD = 'Battery-Staple-43-horse';
const CANARY = 'canary-cli-secret-3f9a';

function cli(args: string[], input = '') {
  const result = spawnSync(CLI, args, { input, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('secret, passwd and rekey commands', () => {
  let profile: string;
  let serve: ChildProcessWithoutNullStreams;
  let serveLog = '';

  beforeAll(async () => {
    profile = temporaryProfile();
    serve = spawn(CLI, ['serve', '--profile', profile, '--json'], { env: { ...process.env, BACKTESTR_DEBUG: '1' } });
    let output = '';
    serve.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    serve.stderr.on('data', (chunk: Buffer) => (serveLog += chunk.toString()));
    await waitFor(() => output.includes('runtimeDir'), 30_000, 'serve to report its runtime directory');
    expect(cli(['init', '--profile', profile, '--password-stdin'], `${TEST_PASSWORD}\n`).status).toBe(0);
  });

  afterAll(async () => {
    serve.kill('SIGTERM');
    await new Promise((resolve) => serve.once('exit', resolve));
    fs.rmSync(profile, { recursive: true, force: true });
  });

  const common = () => ['--profile', profile, '--password-stdin'];

  test('put, get, list and delete', () => {
    const put = cli(['secret', 'put', 'broker', ...common()], `${TEST_PASSWORD}\n${CANARY}\n`);
    expect(put.stderr).toBe('');
    expect(put.status).toBe(0);
    expect(put.stdout).toContain('Stored secret broker');

    const list = cli(['secret', 'list', '--json', ...common()], `${TEST_PASSWORD}\n`);
    expect(JSON.parse(list.stdout)).toEqual(['broker']);

    const get = cli(['secret', 'get', 'broker', ...common()], `${TEST_PASSWORD}\n`);
    expect(get.status).toBe(0);
    expect(get.stdout).toBe(`${CANARY}\n`);
    const getJson = cli(['secret', 'get', 'broker', '--json', ...common()], `${TEST_PASSWORD}\n`);
    expect(JSON.parse(getJson.stdout)).toEqual({ name: 'broker', value: CANARY });

    const deleted = cli(['secret', 'delete', 'broker', ...common()], `${TEST_PASSWORD}\n`);
    expect(deleted.status).toBe(0);
    expect(JSON.parse(cli(['secret', 'list', '--json', ...common()], `${TEST_PASSWORD}\n`).stdout)).toEqual([]);
    const missing = cli(['secret', 'get', 'broker', '--json', ...common()], `${TEST_PASSWORD}\n`);
    expect(missing.status).toBe(1);
    expect(JSON.parse(missing.stdout).error.code).toBe('E_NOT_FOUND');
  });

  test('value on argv is rejected without echo', () => {
    const result = cli(['secret', 'put', 'broker', CANARY, ...common()], `${TEST_PASSWORD}\n`);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('E_INVALID_PARAMS');
    expect(result.stderr).not.toContain(CANARY);
  });

  test('empty value is rejected', () => {
    const result = cli(['secret', 'put', 'broker', ...common()], `${TEST_PASSWORD}\n`);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('E_INVALID_PARAMS');
  });

  test('rekey keeps secrets readable', () => {
    expect(cli(['secret', 'put', 'exchange', ...common()], `${TEST_PASSWORD}\n${CANARY}-2\n`).status).toBe(0);
    const rekeyed = cli(['rekey', 'vault', '--json', ...common()], `${TEST_PASSWORD}\n`);
    expect(rekeyed.status).toBe(0);
    expect(JSON.parse(rekeyed.stdout).rekeyed).toEqual([{ purpose: 'vault', generation: 2 }]);
    expect(cli(['rekey', '--json', ...common()], `${TEST_PASSWORD}\n`).status).toBe(0);
    expect(cli(['secret', 'get', 'exchange', ...common()], `${TEST_PASSWORD}\n`).stdout).toBe(`${CANARY}-2\n`);
    expect(cli(['rekey', 'other', ...common()], `${TEST_PASSWORD}\n`).stderr).toContain('E_INVALID_PARAMS');
  });

  test('passwd replaces the password', () => {
    const weak = cli(['passwd', ...common()], `${TEST_PASSWORD}\nweak\n`);
    expect(weak.status).toBe(1);
    expect(weak.stderr).toContain('E_WEAK_PASSWORD');

    const changed = cli(['passwd', ...common()], `${TEST_PASSWORD}\n${NEW_PASSWORD}\n`);
    expect(changed.stderr).toBe('');
    expect(changed.status).toBe(0);

    const old = cli(['secret', 'list', '--json', ...common()], `${TEST_PASSWORD}\n`);
    expect(JSON.parse(old.stdout).error.code).toBe('E_WRONG_PASSWORD');
    const fresh = cli(['secret', 'list', '--json', ...common()], `${NEW_PASSWORD}\n`);
    expect(JSON.parse(fresh.stdout)).toEqual(['exchange']);
  });

  test('no secret or password in logs', async () => {
    // Events reach the security log asynchronously, so wait for the last one first.
    await waitFor(() => fs.readFileSync(path.join(profile, 'logs', 'security.log'), 'utf8').includes('auth.password_verified'), 10_000, 'the password change event');
    const securityLog = fs.readFileSync(path.join(profile, 'logs', 'security.log'), 'utf8');
    expect(serveLog).toContain('"service":"storage"');
    for (const text of [serveLog, securityLog]) {
      expect(text).not.toContain('canary-cli-secret');
      expect(text).not.toContain(TEST_PASSWORD);
      expect(text).not.toContain(NEW_PASSWORD);
    }
  });

  test('help lists the new commands', () => {
    const help = cli(['--help']).stdout;
    for (const command of ['secret put NAME', 'secret get NAME', 'secret list', 'secret delete NAME', 'passwd', 'rekey [store|vault]']) {
      expect(help).toContain(command);
    }
  });
});
