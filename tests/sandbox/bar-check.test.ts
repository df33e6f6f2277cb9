/**
 * The bar check that every run passes: a table of broken values in each column and at each
 * position. The error names the column of the first invalid value, and columns are checked in
 * the order time, open, high, low, close, volume. A worker checks the columns in two groups, and
 * the groups must raise the same error as the whole check.
 */
import { validateAccountingColumns, validateBars, validateStrategyColumns } from '../../services/sandbox/bar-check';
import { BAR_COLUMNS, type Bars } from '../../services/sandbox/types';
import { syntheticBars, thrown } from './fixtures';

const BAR_COUNT = 50;

function copyOf(bars: Bars): Bars {
  return {
    time: bars.time.slice(),
    open: bars.open.slice(),
    high: bars.high.slice(),
    low: bars.low.slice(),
    close: bars.close.slice(),
    volume: bars.volume.slice(),
  };
}

function withValue(column: keyof Bars, index: number, value: number): Bars {
  const bars = copyOf(syntheticBars(BAR_COUNT));
  bars[column][index] = value;
  return bars;
}

const PRICE_COLUMNS = ['open', 'high', 'low', 'close'] as const;
const POSITIONS = [0, 1, 25, BAR_COUNT - 1];

describe('sandbox bar check', () => {
  test('valid bars pass', () => {
    expect(thrown(() => validateBars(syntheticBars(BAR_COUNT)))).toBeNull();
    expect(thrown(() => validateBars(syntheticBars(1)))).toBeNull();
  });

  test('zero and negative-zero volume pass', () => {
    expect(thrown(() => validateBars(withValue('volume', 3, 0)))).toBeNull();
    expect(thrown(() => validateBars(withValue('volume', 3, -0)))).toBeNull();
  });

  test('broken prices are rejected', () => {
    for (const column of PRICE_COLUMNS) {
      for (const value of [NaN, Infinity, -Infinity, 0, -0, -1]) {
        for (const index of POSITIONS) {
          const error = thrown(() => validateBars(withValue(column, index, value)));
          expect([column, value, index, error?.code, error?.details.path]).toEqual([column, value, index, 'E_INVALID_PARAMS', `params.bars.${column}`]);
        }
      }
    }
  });

  test('broken volumes are rejected', () => {
    for (const value of [NaN, Infinity, -Infinity, -1, -Number.MIN_VALUE]) {
      for (const index of POSITIONS) {
        const error = thrown(() => validateBars(withValue('volume', index, value)));
        expect([value, index, error?.code, error?.details.path]).toEqual([value, index, 'E_INVALID_PARAMS', 'params.bars.volume']);
      }
    }
  });

  test('broken times are rejected', () => {
    const bars = syntheticBars(BAR_COUNT);
    const cases: [string, number, number][] = [
      ['NaN', 0, NaN],
      ['NaN later', 25, NaN],
      ['Infinity last', BAR_COUNT - 1, Infinity],
      ['-Infinity first', 0, -Infinity],
      ['repeated time', 25, bars.time[24]],
      ['earlier time', 25, bars.time[24] - 1],
      ['first after second', 0, bars.time[1]],
    ];
    for (const [name, index, value] of cases) {
      const error = thrown(() => validateBars(withValue('time', index, value)));
      expect([name, error?.code, error?.details.path]).toEqual([name, 'E_INVALID_PARAMS', 'params.bars.time']);
    }
  });

  test('earlier column is named first', () => {
    const bars = withValue('volume', 1, -1);
    bars.close[40] = NaN;
    bars.high[45] = 0;
    expect(thrown(() => validateBars(bars))?.details.path).toBe('params.bars.high');
    bars.time[49] = bars.time[48];
    expect(thrown(() => validateBars(bars))?.details.path).toBe('params.bars.time');
  });

  test('two groups raise the whole check\'s error', () => {
    const cases: [keyof Bars, number, number][] = [
      ['time', 7, NaN],
      ['open', 0, -1],
      ['high', 20, 0],
      ['low', 49, Infinity],
      ['close', 30, -0],
      ['volume', 3, -1],
    ];
    for (const [column, index, value] of cases) {
      const bars = withValue(column, index, value);
      // A second, later error in a column of the other group must not change which one is named.
      bars.close[45] = NaN;
      bars.high[46] = NaN;
      const whole = thrown(() => validateBars(bars));
      const split = thrown(() => {
        validateStrategyColumns(bars);
        validateAccountingColumns(bars);
      });
      expect([column, split?.code, split?.details.path, split?.message]).toEqual([column, whole?.code, whole?.details.path, whole?.message]);
    }
  });

  test('unequal and empty columns are rejected', () => {
    for (const column of BAR_COLUMNS) {
      const bars = copyOf(syntheticBars(BAR_COUNT));
      bars[column] = bars[column].slice(1);
      const error = thrown(() => validateBars(bars));
      // A short time column is reported on the first column whose length differs from it.
      expect([column, error?.code]).toEqual([column, 'E_INVALID_PARAMS']);
    }
    const empty = { time: new Float64Array(0), open: new Float64Array(0), high: new Float64Array(0), low: new Float64Array(0), close: new Float64Array(0), volume: new Float64Array(0) };
    expect(thrown(() => validateBars(empty))?.details.path).toBe('params.bars.time');
  });
});
