/**
 * Strategy compilation: TypeScript stripping, rejected module syntax and error positions in the
 * strategy's own file.
 */
import { findModuleUse } from '../../services/sandbox/module-scan';
import { runBacktest } from '../../services/sandbox/backtest';
import type { BacktestResult } from '../../services/sandbox/types';
import { rejection, syntheticBars } from './fixtures';

const bars = syntheticBars(30);
const run = (source: string, filename = 'strategy.ts'): Promise<BacktestResult> => runBacktest({ source, filename, bars, params: {} });

describe('sandbox compilation', () => {
  test.each([
    ["const fs = require('fs');\nfunction onBar() {}", 'require', 1, 12],
    ["import fs from 'fs';\nfunction onBar() {}", 'import', 1, 1],
    ["function onBar() {}\n  import('node:fs');", 'import', 2, 3],
    ['export function onBar() {}', 'export', 1, 1],
    ['function onBar() { const os = require ("os"); }', 'require', 1, 31],
  ])('module syntax %p is a compile error', async (source, keyword, line, column) => {
    const error = await rejection(run(source));
    expect(error.code).toBe('E_STRATEGY_COMPILE');
    expect(error.details).toEqual({ file: 'strategy.ts', line, column, keyword });
    expect(error.message).toContain('strategy API');
  });

  test('module words in strings and comments are allowed', async () => {
    const source = [
      '// require("fs") would fail here',
      '/* import fs from "fs" */',
      'const note = "import export require(";',
      'const pattern = /require\\(/;',
      'const template = `require(${note.length}) import`;',
      'const table = { import: 1, require: 2 };',
      'function onBar(ctx) { if (ctx.bar.index === 0) ctx.log(table.import + table.require, pattern.source.length, template.length > 0); }',
    ].join('\n');
    const result = await run(source);
    expect(result.logs).toEqual(['[bar 0] 3 9 true']);
  });

  test('TypeScript types are stripped', async () => {
    const source = [
      "import type { Unused } from './strategy-api';",
      'interface Signal { long: boolean }',
      'const threshold: number = 0;',
      'function onBar(ctx: StrategyContext): void {',
      '  const signal: Signal = { long: ctx.close() > threshold };',
      '  if (ctx.bar.index === 1 && signal.long) ctx.log(<number>ctx.close(1) as number);',
      '}',
    ].join('\n');
    const result = await run(source.replace('<number>', ''));
    expect(result.logs).toEqual([`[bar 1] ${bars.close[0]}`]);
  });

  test('syntax error names file, line and column', async () => {
    const error = await rejection(run('const a = 1;\nfunction onBar(ctx) {\n  let x = ;\n}', 'broken.js'));
    expect(error.code).toBe('E_STRATEGY_COMPILE');
    expect(error.details).toEqual({ file: 'broken.js', line: 3, column: 11 });
  });

  test('TypeScript syntax error names the file', async () => {
    const error = await rejection(run('const a: number = 1;\nfunction onBar(ctx) {\n  let x = ;\n}'));
    expect(error.code).toBe('E_STRATEGY_COMPILE');
    expect(error.details.file).toBe('strategy.ts');
  });

  test('unsupported TypeScript is a compile error', async () => {
    const error = await rejection(run('enum Side { Buy, Sell }\nfunction onBar() {}'));
    expect(error.code).toBe('E_STRATEGY_COMPILE');
    expect(error.details.file).toBe('strategy.ts');
  });

  test('missing onBar is a compile error', async () => {
    const error = await rejection(run('function onbar() {}', 'typo.js'));
    expect(error.code).toBe('E_STRATEGY_COMPILE');
    expect(error.details).toEqual({ file: 'typo.js' });
  });

  test('arrow-function onBar is accepted', async () => {
    const result = await run('const onBar = (ctx) => { if (ctx.bar.index === 2) ctx.log("arrow"); };', 'arrow.js');
    expect(result.logs).toEqual(['[bar 2] arrow']);
  });

  test.each(['../escape.ts', 'a:b.ts', 'strategy.py', ''])('file name %p is rejected', async (filename) => {
    const error = await rejection(run('function onBar() {}', filename));
    expect(error.code).toBe('E_INVALID_PARAMS');
  });

  test('scanner reports positions of module words', () => {
    expect(findModuleUse('let a = 1;\n\n   require("x")')).toEqual({ keyword: 'require', line: 3, column: 4 });
    expect(findModuleUse('obj.require("x"); obj?.import; a / 2 / 3; // import')).toBeNull();
    expect(findModuleUse('const s = `${`${"x"}`}`; export default 1;')).toEqual({ keyword: 'export', line: 1, column: 26 });
  });
});
