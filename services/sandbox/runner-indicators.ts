/**
 * The indicator part of the in-isolate runner (runner-source.ts), as source text. It is pasted
 * into the runner's closure, so it reads the runner's bar columns, the current bar index `t`
 * and the intrinsics the runner captured before strategy code ran.
 *
 * Every indicator keeps running state per period, so calling it on every bar costs O(1)
 * amortised, whatever the period: SMA and standard deviation slide a window sum (recomputed
 * from scratch every `period` steps to bound rounding drift), EMA, RSI and ATR advance their
 * recursions from the last bar they saw, and highest/lowest keep a monotonic queue of indices.
 * Skipping bars between calls is allowed: the state then catches up or is rebuilt.
 *
 * Kept as plain JavaScript without backticks or `${`, so it can live in a String.raw literal.
 */
export const RUNNER_INDICATORS_SOURCE = String.raw`
  const MAX_PERIOD = 1e9;
  // Strategies use few periods, so a short array is scanned before falling back to a Map.
  const LINEAR_STATES = 16;

  function createStateTable() {
    return { keys: [], states: [], map: null };
  }

  function findState(table, key) {
    const keys = table.keys;
    for (let k = 0; k < keys.length; k++) {
      if (keys[k] === key) return table.states[k];
    }
    return table.map === null ? undefined : table.map.get(key);
  }

  function addState(table, key, state) {
    if (table.keys.length < LINEAR_STATES) {
      table.keys.push(key);
      table.states.push(state);
      return;
    }
    if (table.map === null) table.map = new MapCtor();
    table.map.set(key, state);
  }

  function checkPeriod(period) {
    if (!NumberIsInteger(period) || period < 1 || period > MAX_PERIOD) {
      throw new RangeErrorCtor('period must be an integer from 1 to ' + MAX_PERIOD + ', got ' + toText(period));
    }
  }

  const FIELD_NAMES = ['close', 'open', 'high', 'low', 'volume'];

  function fieldIndexOf(field) {
    if (field === undefined) return 0;
    for (let k = 0; k < FIELD_NAMES.length; k++) {
      if (FIELD_NAMES[k] === field) return k;
    }
    throw new RangeErrorCtor("field must be one of 'close', 'open', 'high', 'low', 'volume', got " + toText(field));
  }

  function columnAt(fieldIndex) {
    if (fieldIndex === 0) return closeColumn;
    if (fieldIndex === 1) return openColumn;
    if (fieldIndex === 2) return highColumn;
    if (fieldIndex === 3) return lowColumn;
    return volumeColumn;
  }

  const smaTable = createStateTable();
  function sma(period) {
    let state = findState(smaTable, period);
    if (state === undefined) {
      checkPeriod(period);
      state = { bar: -2, sum: 0, steps: 0 };
      addState(smaTable, period, state);
    }
    if (t + 1 < period) return NaN;
    if (state.bar !== t) {
      if (state.bar === t - 1 && state.steps < period) {
        state.sum += closeColumn[t] - closeColumn[t - period];
        state.steps++;
      } else {
        let sum = 0;
        for (let i = t - period + 1; i <= t; i++) sum += closeColumn[i];
        state.sum = sum;
        state.steps = 0;
      }
      state.bar = t;
    }
    return state.sum / period;
  }

  // Population standard deviation over a sliding window: Welford's update for a value that
  // enters and one that leaves, with an exact two-pass recomputation every 'period' steps.
  const stddevTable = createStateTable();
  function stddev(period) {
    checkPeriod(period);
    if (t + 1 < period) return NaN;
    let state = findState(stddevTable, period);
    if (state === undefined) {
      state = { bar: -2, mean: 0, m2: 0, steps: 0 };
      addState(stddevTable, period, state);
    }
    if (state.bar !== t) {
      if (state.bar === t - 1 && state.steps < period) {
        const entering = closeColumn[t];
        const leaving = closeColumn[t - period];
        const delta = entering - leaving;
        const mean = state.mean + delta / period;
        state.m2 += delta * (entering - mean + leaving - state.mean);
        state.mean = mean;
        state.steps++;
      } else {
        let sum = 0;
        for (let i = t - period + 1; i <= t; i++) sum += closeColumn[i];
        const mean = sum / period;
        let squares = 0;
        for (let i = t - period + 1; i <= t; i++) squares += (closeColumn[i] - mean) * (closeColumn[i] - mean);
        state.mean = mean;
        state.m2 = squares;
        state.steps = 0;
      }
      state.bar = t;
    }
    return MathSqrt(state.m2 > 0 ? state.m2 / period : 0);
  }

  // Seeded with the simple average of the first 'period' closes, then alpha = 2 / (period + 1).
  const emaTable = createStateTable();
  function ema(period) {
    checkPeriod(period);
    if (t + 1 < period) return NaN;
    let state = findState(emaTable, period);
    if (state === undefined) {
      let sum = 0;
      for (let i = 0; i < period; i++) sum += closeColumn[i];
      state = { bar: period - 1, value: sum / period };
      addState(emaTable, period, state);
    }
    const alpha = 2 / (period + 1);
    for (let i = state.bar + 1; i <= t; i++) state.value += alpha * (closeColumn[i] - state.value);
    state.bar = t;
    return state.value;
  }

  // Wilder's RSI: simple averages of the first 'period' changes, then Wilder smoothing.
  const rsiTable = createStateTable();
  function rsi(period) {
    checkPeriod(period);
    if (t < period) return NaN;
    let state = findState(rsiTable, period);
    if (state === undefined) {
      let gain = 0;
      let loss = 0;
      for (let i = 1; i <= period; i++) {
        const change = closeColumn[i] - closeColumn[i - 1];
        if (change > 0) gain += change;
        else loss -= change;
      }
      state = { bar: period, gain: gain / period, loss: loss / period };
      addState(rsiTable, period, state);
    }
    for (let i = state.bar + 1; i <= t; i++) {
      const change = closeColumn[i] - closeColumn[i - 1];
      state.gain = (state.gain * (period - 1) + (change > 0 ? change : 0)) / period;
      state.loss = (state.loss * (period - 1) + (change < 0 ? -change : 0)) / period;
    }
    state.bar = t;
    if (state.loss === 0) return state.gain === 0 ? 50 : 100;
    return 100 - 100 / (1 + state.gain / state.loss);
  }

  function trueRange(i) {
    const range = highColumn[i] - lowColumn[i];
    if (i === 0) return range;
    const previousClose = closeColumn[i - 1];
    return MathMax(range, MathAbs(highColumn[i] - previousClose), MathAbs(lowColumn[i] - previousClose));
  }

  // Wilder's ATR: the mean true range of bars 0..period-1, then Wilder smoothing.
  const atrTable = createStateTable();
  function atr(period) {
    checkPeriod(period);
    if (t + 1 < period) return NaN;
    let state = findState(atrTable, period);
    if (state === undefined) {
      let sum = 0;
      for (let i = 0; i < period; i++) sum += trueRange(i);
      state = { bar: period - 1, value: sum / period };
      addState(atrTable, period, state);
    }
    for (let i = state.bar + 1; i <= t; i++) state.value = (state.value * (period - 1) + trueRange(i)) / period;
    state.bar = t;
    return state.value;
  }

  // Monotonic queue of bar indices: the front is the extreme of the window, and every index is
  // pushed and dropped once, so a run of calls costs O(1) per bar. Keys combine period and field.
  const QUEUE_COMPACT_AT = 4096;
  const highestTable = createStateTable();
  const lowestTable = createStateTable();

  function windowExtreme(table, period, field, wantMax) {
    checkPeriod(period);
    const fieldIndex = fieldIndexOf(field);
    if (t + 1 < period) return NaN;
    const column = columnAt(fieldIndex);
    const key = period * 8 + fieldIndex;
    let state = findState(table, key);
    if (state === undefined) {
      state = { bar: -2, queue: [], head: 0 };
      addState(table, key, state);
    }
    if (state.bar !== t) {
      let from = state.bar + 1;
      if (state.bar < t - period) {
        state.queue = [];
        state.head = 0;
        from = t - period + 1;
      }
      const queue = state.queue;
      for (let i = from; i <= t; i++) {
        const value = column[i];
        while (queue.length > state.head) {
          const last = column[queue[queue.length - 1]];
          if (wantMax ? last > value : last < value) break;
          queue.pop();
        }
        queue.push(i);
      }
      while (queue[state.head] <= t - period) state.head++;
      if (state.head >= QUEUE_COMPACT_AT && state.head * 2 >= queue.length) {
        state.queue = queue.slice(state.head);
        state.head = 0;
      }
      state.bar = t;
    }
    return column[state.queue[state.head]];
  }

  function highest(period, field) {
    return windowExtreme(highestTable, period, field, true);
  }

  function lowest(period, field) {
    return windowExtreme(lowestTable, period, field, false);
  }
`;
