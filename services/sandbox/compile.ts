/**
 * Turns strategy source text into the classic script that runs in the isolate. TypeScript types
 * are stripped and module syntax is rejected with a message that points at the strategy API.
 * The code is then wrapped so that the in-isolate runner catches whatever its top level throws.
 */
import { stripTypeScriptTypes } from 'node:module';
import { BacktestrError } from '../../protocol/errors';
import { findModuleUse } from './module-scan';

/** Base file name of a strategy: shown in messages and stack traces, so no paths or colons. */
export const STRATEGY_FILENAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,124}\.(?:ts|js)$/;

/** Maximum strategy source length, in UTF-16 code units (1 MiB of ASCII). */
export const MAX_SOURCE_LENGTH = 1024 * 1024;

/**
 * The wrapper's first line. It sits one line above the strategy's first line, so the script is
 * compiled with `lineOffset: -1` and V8 reports the strategy's own line numbers. Strategies always
 * run in strict mode, which also keeps `caller` from reaching runner frames.
 */
const WRAPPER_HEAD = "'use strict'; try {\n";

/**
 * The wrapper's tail hands `onBar` and `init` to the runner. It reads them with `typeof`, so both
 * function declarations and `const onBar = (ctx) => ...` work. It also catches a throw from the
 * top level, so that a thrown strategy value does not reach isolated-vm's error conversion.
 */
const WRAPPER_TAIL =
  "\n;__backtestrRegister(typeof onBar === 'function' ? onBar : undefined, typeof init === 'function' ? init : undefined);\n" +
  '} catch (error) { __backtestrLoadFailed(error); }\n';

export const WRAPPER_LINE_OFFSET = -1;

export const API_HINT =
  'strategies cannot load modules: the strategy API offers past bars (ctx.bar, ctx.close(n), ctx.history), ' +
  'indicators (ctx.sma, ctx.ema, ctx.rsi, ctx.stddev, ctx.atr, ctx.highest, ctx.lowest), orders ' +
  '(ctx.order, ctx.buy, ctx.sell, ctx.targetPercent) and ctx.log; see docs/strategy-api.md';

/** Checks the file name and returns the strategy as JavaScript (types stripped for `.ts`). */
export function toJavaScript(source: string, filename: string): string {
  if (!STRATEGY_FILENAME_PATTERN.test(filename)) {
    throw new BacktestrError('E_INVALID_PARAMS', `invalid strategy file name ${JSON.stringify(filename.slice(0, 130))}: expected a base name ending in .ts or .js`, {
      path: 'params.filename',
    });
  }
  if (source.length > MAX_SOURCE_LENGTH) {
    throw new BacktestrError('E_INVALID_PARAMS', `strategy source is too long: ${source.length} characters, at most ${MAX_SOURCE_LENGTH}`, { path: 'params.source' });
  }
  if (!filename.endsWith('.ts')) return source;

  try {
    // Strip mode replaces every type annotation with spaces, so lines and columns stay exact.
    return stripTypeScriptTypes(source, { mode: 'strip' });
  } catch (error) {
    // NOTE: Node 24's stripper reports no position, so these errors carry the file name only.
    const message = error instanceof Error ? error.message : String(error);
    throw new BacktestrError('E_STRATEGY_COMPILE', `${filename}: TypeScript syntax error: ${message}`, { file: filename }, { cause: error });
  }
}

/** Raises E_STRATEGY_COMPILE when the strategy uses `import`, `export` or `require`. */
export function rejectModuleSyntax(code: string, filename: string): void {
  const use = findModuleUse(code);
  if (use === null) return;
  throw new BacktestrError('E_STRATEGY_COMPILE', `${filename}:${use.line}:${use.column}: '${use.keyword}' is not available because ${API_HINT}`, {
    file: filename,
    line: use.line,
    column: use.column,
    keyword: use.keyword,
  });
}

export interface StrategyScript {
  /** The strategy as JavaScript, types stripped, for a compile check on its own. */
  code: string;
  /** The script to run in the isolate, compiled with `lineOffset: WRAPPER_LINE_OFFSET`. */
  wrapped: string;
}

/** Checks the strategy and returns its JavaScript text, alone and wrapped for the runner. */
export function prepareStrategyScript(source: string, filename: string): StrategyScript {
  const code = toJavaScript(source, filename);
  rejectModuleSyntax(code, filename);
  return { code, wrapped: WRAPPER_HEAD + code + WRAPPER_TAIL };
}
