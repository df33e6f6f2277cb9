import { appendFileSync, chmodSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { LoggedEvent } from '../../services/monitor/event-log';
import { COALESCED_TYPE, createMonitorService, SECURITY_LOG_FILE } from '../../services/monitor/service';
import { MAX_DETAIL_STRING_LENGTH, REDACTED } from '../../services/monitor/redact';
import type { ServiceDefinition } from '../../services/runtime/types';
import { createTestContext, invoke, type TestContext, manualClock, errorOf } from '../support/service-context';

interface Tail {
  events: LoggedEvent[];
  malformedLines: number;
}



function event(type: string, details: Record<string, unknown> = {}, severity = 'info'): unknown {
  return { source: 'test', type, severity, details };
}

describe('monitor service', () => {
  let t: TestContext;
  let clock: ReturnType<typeof manualClock>;
  let monitor: ServiceDefinition;
  let logPath: string;

  beforeEach(async () => {
    t = createTestContext('monitor');
    clock = manualClock();
    monitor = createMonitorService({ now: clock.now });
    await monitor.start?.(t.ctx);
    logPath = path.join(t.ctx.stateDir, SECURITY_LOG_FILE);
  });

  afterEach(async () => {
    await monitor.stop?.(t.ctx);
    t.cleanup();
  });

  test('record writes numbered JSON lines', async () => {
    const first = await invoke(monitor, t.ctx, 'record', event('auth.unlock_ok', { expiresAt: 5 }));
    const second = await invoke(monitor, t.ctx, 'record', event('auth.wrong_password', { attemptsLeft: 3, final: false }, 'warning'));
    expect(first).toEqual({ seq: 1 });
    expect(second).toEqual({ seq: 2 });

    const lines = readFileSync(logPath, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({
      seq: 2,
      source: 'test',
      type: 'auth.wrong_password',
      severity: 'warning',
      level: 'warn',
      details: { attemptsLeft: 3, final: false },
    });
    expect(typeof lines[1].time).toBe('number');
  });

  test('log file and directory are private', async () => {
    await invoke(monitor, t.ctx, 'record', event('x.y'));
    expect(statSync(logPath).mode & 0o777).toBe(0o600);
    expect(statSync(t.ctx.stateDir).mode & 0o777).toBe(0o700);
  });

  test('existing log file is narrowed to 0600', async () => {
    await monitor.stop?.(t.ctx);
    chmodSync(logPath, 0o644);
    expect(statSync(logPath).mode & 0o777).toBe(0o644);

    monitor = createMonitorService({ now: clock.now });
    await monitor.start?.(t.ctx);
    expect(statSync(logPath).mode & 0o777).toBe(0o600);
  });

  test('secret details never reach the file', async () => {
    const canary = 'CANARY-do-not-log';
    const tokenCanary = 'AbCdEf0123456789AbCdEf0123456789xyzXYZ_-abc';
    const details = {
      password: canary,
      token: canary,
      sessionId: canary,
      apiKey: canary,
      client_secret: canary,
      pin: canary,
      opaqueValue: tokenCanary,
      phc: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA',
      note: 'kept as is',
    };
    await invoke(monitor, t.ctx, 'record', event('auth.test', details));

    const text = readFileSync(logPath, 'utf8');
    expect(text).not.toContain('CANARY');
    expect(text).not.toContain(tokenCanary);
    expect(text).not.toContain('argon2');
    expect(t.readLog()).not.toContain('CANARY');

    const { events } = await invoke<Tail>(monitor, t.ctx, 'tail', { limit: 1 });
    expect(events[0].details).toEqual({
      password: REDACTED,
      token: REDACTED,
      sessionId: REDACTED,
      apiKey: REDACTED,
      client_secret: REDACTED,
      pin: REDACTED,
      opaqueValue: REDACTED,
      phc: REDACTED,
      note: 'kept as is',
    });
  });

  test('long strings are truncated', async () => {
    await invoke(monitor, t.ctx, 'record', event('x.long', { message: 'a b '.repeat(500) }));
    const { events } = await invoke<Tail>(monitor, t.ctx, 'tail', { limit: 1 });
    const message = events[0].details.message as string;
    expect(message.startsWith('a b a b')).toBe(true);
    expect(message.endsWith('[truncated]')).toBe(true);
    expect(message.length).toBe(MAX_DETAIL_STRING_LENGTH + '[truncated]'.length);
  });

  test.each([
    ['nested object', event('x.y', { nested: { a: 1 } })],
    ['array value', event('x.y', { list: [1, 2] })],
    ['null value', event('x.y', { empty: null })],
    ['NaN value', event('x.y', { ratio: Number.NaN })],
    ['prototype key', { source: 'test', type: 'x.y', severity: 'info', details: JSON.parse('{"__proto__":1}') }],
    ['bad type name', event('x y')],
    ['prototype member as type', event('constructor')],
    ['bad severity', event('x.y', {}, 'fatal')],
    ['too many keys', event('x.y', Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i])))],
  ])('record rejects %s', async (_name, params) => {
    const error = await errorOf(invoke(monitor, t.ctx, 'record', params));
    expect(error.code).toBe('E_INVALID_PARAMS');

    // The service still works after a rejected request.
    expect(await invoke(monitor, t.ctx, 'record', event('x.after'))).toEqual({ seq: 1 });
  });

  test('counts events per type', async () => {
    await invoke(monitor, t.ctx, 'record', event('a.one'));
    await invoke(monitor, t.ctx, 'record', event('a.one'));
    await invoke(monitor, t.ctx, 'record', event('b.two'));
    expect(await invoke(monitor, t.ctx, 'counts', {})).toEqual({ 'a.one': 2, 'b.two': 1 });
  });

  test('repeats over the rate limit are coalesced', async () => {
    const seqs: (number | null)[] = [];
    for (let i = 0; i < 25; i++) {
      const result = await invoke<{ seq: number | null }>(monitor, t.ctx, 'record', event('noisy.type', { i }));
      seqs.push(result.seq);
    }
    expect(seqs.filter((seq) => seq !== null)).toHaveLength(20);
    expect(seqs.slice(20)).toEqual([null, null, null, null, null]);

    // Another type still gets through in the same window.
    expect((await invoke<{ seq: number | null }>(monitor, t.ctx, 'record', event('quiet.type'))).seq).toBe(21);

    clock.advance(1000);
    const next = await invoke<{ seq: number | null }>(monitor, t.ctx, 'record', event('noisy.type', { i: 25 }));
    expect(next.seq).toBe(23);

    const { events } = await invoke<Tail>(monitor, t.ctx, 'tail', { limit: 2 });
    expect(events[0].type).toBe(COALESCED_TYPE);
    expect(events[0].seq).toBe(22);
    expect(events[0].details.eventType).toBe('noisy.type');
    expect(events[0].details.dropped).toBe(5);
    expect(events[1].details).toEqual({ i: 25 });

    expect(await invoke(monitor, t.ctx, 'counts', {})).toEqual({ 'noisy.type': 26, 'quiet.type': 1 });
  });

  test('total rate limit caps distinct types', async () => {
    const limited = createMonitorService({ now: clock.now, rateLimits: { maxTotal: 10 } });
    const other = createTestContext('monitor');
    try {
      let written = 0;
      for (let i = 0; i < 30; i++) {
        const result = await invoke<{ seq: number | null }>(limited, other.ctx, 'record', event(`spray.t${i}`));
        if (result.seq !== null) written++;
      }
      expect(written).toBe(10);

      await limited.stop?.(other.ctx);
      const text = readFileSync(path.join(other.ctx.stateDir, SECURITY_LOG_FILE), 'utf8');
      const summaries = text.trim().split('\n').map((line) => JSON.parse(line)).filter((line) => line.type === COALESCED_TYPE);
      expect(summaries).toHaveLength(20);
    } finally {
      other.cleanup();
    }
  });

  test('stop writes pending coalesced summary', async () => {
    for (let i = 0; i < 22; i++) await invoke(monitor, t.ctx, 'record', event('burst.type'));
    await monitor.stop?.(t.ctx);

    const lines = readFileSync(logPath, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    expect(lines).toHaveLength(21);
    expect(lines[20].type).toBe(COALESCED_TYPE);
    expect(lines[20].details.dropped).toBe(2);

    monitor = createMonitorService({ now: clock.now });
    await monitor.start?.(t.ctx);
  });

  test('seq continues after a restart', async () => {
    await invoke(monitor, t.ctx, 'record', event('a.b'));
    await invoke(monitor, t.ctx, 'record', event('a.b'));
    await monitor.stop?.(t.ctx);

    monitor = createMonitorService({ now: clock.now });
    await monitor.start?.(t.ctx);
    expect(await invoke(monitor, t.ctx, 'record', event('a.b'))).toEqual({ seq: 3 });
  });

  test('torn last line is skipped on restart', async () => {
    await invoke(monitor, t.ctx, 'record', event('a.b'));
    await monitor.stop?.(t.ctx);
    // What a crash in the middle of a write leaves behind.
    appendFileSync(logPath, '{"level":"info","time":1,"seq":2,"sou');

    monitor = createMonitorService({ now: clock.now });
    await monitor.start?.(t.ctx);
    expect(await invoke(monitor, t.ctx, 'record', event('a.b'))).toEqual({ seq: 2 });

    const tail = await invoke<Tail>(monitor, t.ctx, 'tail', { limit: 10 });
    expect(tail.malformedLines).toBe(1);
    expect(tail.events.map((e) => e.seq)).toEqual([1]);
  });

  test('tail reads across many chunks', async () => {
    const busy = createMonitorService({ now: clock.now, rateLimits: { maxPerType: 5000, maxTotal: 5000 } });
    const other = createTestContext('monitor');
    try {
      for (let i = 0; i < 2000; i++) {
        await invoke(busy, other.ctx, 'record', event('bulk.type', { index: i, filler: 'x'.repeat(100) }));
      }
      const { events, malformedLines } = await invoke<Tail>(busy, other.ctx, 'tail', { limit: 1000 });
      expect(malformedLines).toBe(0);
      expect(events).toHaveLength(1000);
      expect(events[0].seq).toBe(1001);
      expect(events[999].seq).toBe(2000);
      expect(events.every((e, i) => e.details.index === 1000 + i)).toBe(true);
    } finally {
      await busy.stop?.(other.ctx);
      other.cleanup();
    }
  });

  test('tail limit is capped by the schema', async () => {
    const error = await errorOf(invoke(monitor, t.ctx, 'tail', { limit: 1001 }));
    expect(error.code).toBe('E_INVALID_PARAMS');
  });

  test('symlink at log path is rejected', async () => {
    await monitor.stop?.(t.ctx);
    const other = createTestContext('monitor');
    try {
      const target = path.join(other.profileDir, 'elsewhere.log');
      writeFileSync(target, '');
      symlinkSync(target, path.join(other.ctx.stateDir, SECURITY_LOG_FILE));

      const planted = createMonitorService();
      await expect(planted.start?.(other.ctx)).rejects.toMatchObject({ code: 'ELOOP' });
      await expect(invoke(planted, other.ctx, 'record', event('x.y', { note: 'not written' }))).rejects.toMatchObject({ code: 'ELOOP' });
      expect(readFileSync(target, 'utf8')).toBe('');

      // Once the link is gone, the next call opens a real file.
      rmSync(path.join(other.ctx.stateDir, SECURITY_LOG_FILE));
      expect(await invoke(planted, other.ctx, 'record', event('x.y'))).toEqual({ seq: 1 });
      await planted.stop?.(other.ctx);
    } finally {
      other.cleanup();
    }
    monitor = createMonitorService({ now: clock.now });
    await monitor.start?.(t.ctx);
  });
});
