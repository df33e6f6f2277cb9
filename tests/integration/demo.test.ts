/** The main job, run as a user runs it, and its metrics against an independent computation. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT, SP500_CSV } from '../support/harness';
import { readSp500, referenceSmaCrossover } from '../support/reference-backtest';

describe('backtestr demo', () => {
  test('prints metrics that match the reference computation', () => {
    const result = spawnSync(path.join(REPO_ROOT, 'bin', 'backtestr'), ['demo', '--json'], { encoding: 'utf8', timeout: 120_000 });
    expect(result.stderr).not.toMatch(/error E_/);
    expect(result.status).toBe(0);
    const output = JSON.parse(result.stdout);
    const expected = referenceSmaCrossover(readSp500(SP500_CSV), 50, 200);

    expect(output.bars).toBe(5105);
    expect(output.fills).toBe(expected.fills);
    for (const name of ['final_equity', 'total_return', 'cagr', 'volatility', 'sharpe', 'max_drawdown', 'exposure'] as const) {
      // Relative tolerance: the two implementations may sum in a different order.
      const tolerance = 1e-9 * Math.max(1, Math.abs(expected[name]));
      expect(Math.abs(output[name] - expected[name])).toBeLessThanOrEqual(tolerance);
    }
  });
});
