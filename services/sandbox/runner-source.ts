/**
 * The trusted runner that executes inside every strategy isolate, as source text.
 *
 * It runs before any strategy code and, in this order: captures the intrinsics it uses, makes
 * `Date`, `Intl` and `Math.random` deterministic and removes the allocations that escape the
 * memory limit (runner-realm.ts), installs its hooks as locked globals, deep-freezes every
 * intrinsic reachable from the global object and locks the global bindings. Strategy code can
 * then neither change what the runner calls nor reach the runner's closure, which holds the bar
 * columns, the order book, the logs and the progress callback.
 *
 * The per-bar loop runs here, inside the isolate, because one host call per bar is about 30
 * times slower than a loop inside the isolate. Look-ahead is impossible because every accessor
 * reads the closure's columns through the current bar index `t` and rejects later indices, and
 * the columns themselves are never handed to strategy code.
 *
 * The hot path allocates nothing per bar: the account mirror lives in a Float64Array (a `let`
 * holding a double would box a new heap number on every write), `Date.now()` reads the time
 * column lazily instead of a per-bar copy, and the indicators keep O(1) running state
 * (runner-indicators.ts).
 *
 * The order book is a flat Float64Array of triples (bar, kind, value); kinds are ORDER_KIND_* of
 * types.ts. The runner mirrors the host's fill rules (simulate.ts) to show the strategy its cash,
 * position and equity, and returns its final cash, position and fill count so that the host can
 * compare them with its own re-derivation from the orders (runner-result.ts).
 *
 * Progress: at adaptive bar intervals (about every PROGRESS_INTERVAL_MS of real time) the runner
 * passes the current bar index and a copy of the orders placed since its previous report to a
 * host callback, which returns nothing and does not make the runner wait. The host keeps the bar
 * index, so a run that it must stop by disposing the isolate (CPU or memory limit) still names a
 * bar. It re-derives the account from the orders while the loop runs on (rederivation.ts).
 *
 * Hooks, each callable by the host through a one-line script:
 * - __backtestrSetup(time, open, high, low, close, volume, params, settings, progress):
 *   receives the bar columns, parameters, settings and progress callback, once.
 * - __backtestrRegister(onBar, init) and __backtestrLoadFailed(error): called by the wrapper
 *   around the strategy (compile.ts).
 * - __backtestrRun(): runs init and the bar loop and returns a plain result object.
 * - __backtestrProgress(): returns the bar index reached, for limit messages.
 *
 * `installBacktestrRunner(global, harden)` with `harden` false skips the deterministic `Date` and
 * `Math.random`, the freezing and the locking. Only the benchmark's diagnostic run of the engine
 * (bench/sandbox/plain-engine.ts) uses that, with a stand-in global object, to run the same
 * engine without an isolate.
 *
 * Kept as plain JavaScript without backticks or `${`, so it can live in a String.raw literal.
 */
import { RUNNER_INDICATORS_SOURCE } from './runner-indicators';
import { RUNNER_CLOCK_SOURCE, RUNNER_MEMORY_SOURCE } from './runner-realm';

export const RUNNER_FILENAME = 'backtestr-runner.js';

const RUNNER_HEAD = String.raw`
  const ObjectFreeze = Object.freeze;
  const ObjectCreate = Object.create;
  const ObjectDefineProperty = Object.defineProperty;
  const ObjectGetPrototypeOf = Object.getPrototypeOf;
  const ObjectSetPrototypeOf = Object.setPrototypeOf;
  const ObjectGetOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const ReflectOwnKeys = Reflect.ownKeys;
  const ReflectApply = Reflect.apply;
  const ReflectConstruct = Reflect.construct;
  const NumberIsFinite = Number.isFinite;
  const NumberIsInteger = Number.isInteger;
  const MathImul = Math.imul;
  const MathSqrt = Math.sqrt;
  const MathAbs = Math.abs;
  const MathMax = Math.max;
  const MathMin = Math.min;
  const MathFloor = Math.floor;
  const StringCtor = String;
  const ErrorCtor = Error;
  const RangeErrorCtor = RangeError;
  const TypeErrorCtor = TypeError;
  const PromiseCtor = Promise;
  const JSONStringify = JSON.stringify;
  const Float64ArrayCtor = Float64Array;
  const WeakSetCtor = WeakSet;
  const MapCtor = Map;
  const OriginalDate = Date;
  // The real clock, used only to pace progress reports; strategy code sees bar time instead.
  const RealDateNow = OriginalDate.now;

  const ORDER_KIND_QUANTITY = 0;
  const ORDER_KIND_TARGET_PERCENT = 1;
  const MAX_LOG_VALUE_LENGTH = 2000;
  const MAX_ERROR_TEXT_LENGTH = 4000;
  // A targetPercent trade smaller than this fraction of equity is floating-point noise.
  const TARGET_NOISE = 1e-9;
  const PROGRESS_INTERVAL_MS = 2;
  const MAX_PROGRESS_STRIDE = 1 << 20;

  // Lifecycle: 'installed' -> 'loading' (after setup) -> 'running' -> 'done'.
  let phase = 'installed';
  let barCount = 0;
  let timeColumn = null;
  let openColumn = null;
  let highColumn = null;
  let lowColumn = null;
  let closeColumn = null;
  let volumeColumn = null;
  let params = null;
  // Account mirror: ACCOUNT_CASH, ACCOUNT_POSITION and ACCOUNT_COMMISSION slots.
  const account = new Float64ArrayCtor(3);
  const ACCOUNT_CASH = 0;
  const ACCOUNT_POSITION = 1;
  const ACCOUNT_COMMISSION = 2;
  let fillCount = 0;
  let maxOrders = 0;
  let maxLogLines = 0;
  let t = -1;
  let handlingBar = false;
  let orders = new Float64ArrayCtor(0);
  let orderCount = 0;
  let pendingStart = 0;
  // Orders already sent to the host with a progress report.
  let reportedOrders = 0;
  const logs = [];
  let limitHit = '';
  let limitBar = -1;
  let registered = false;
  let onBarFunction;
  let initFunction;
  let loadError = null;
  let progressSink = null;
  let nextProgressCheck = 0;
  let progressStride = 1;
  let lastProgressMs = -Infinity;

  // Math.random: xoshiro128** seeded through a Weyl sequence mixed with murmur3's finalizer.
  let seedState = 0;
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;

  function nextSeed() {
    seedState = (seedState + 0x9e3779b9) | 0;
    let z = seedState;
    z = MathImul(z ^ (z >>> 16), 0x85ebca6b);
    z = MathImul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) | 0;
  }

  function seedRandom(seed) {
    seedState = seed | 0;
    s0 = nextSeed();
    s1 = nextSeed();
    s2 = nextSeed();
    s3 = nextSeed();
    if ((s0 | s1 | s2 | s3) === 0) s0 = 1;
  }

  function nextRandom32() {
    const product = MathImul(s1, 5);
    const result = MathImul((product << 7) | (product >>> 25), 9) >>> 0;
    const shifted = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= shifted;
    s3 = (s3 << 11) | (s3 >>> 21);
    return result;
  }

  function random() {
    // 27 + 26 bits make a uniform double in [0, 1), like V8's own Math.random.
    const high = nextRandom32() >>> 5;
    const low = nextRandom32() >>> 6;
    return (high * 67108864 + low) / 9007199254740992;
  }

  // The time strategy code sees: the current bar's, or the first bar's before the loop starts.
  function barTime() {
    if (barCount === 0) return NaN;
    return t >= 0 ? timeColumn[t] : timeColumn[0];
  }

  // Cuts text to at most 'length' characters, the '...' that marks the cut included.
  function clip(text, length) {
    return text.length > length ? text.slice(0, length - 3) + '...' : text;
  }

  function toText(value) {
    return typeof value === 'string' ? value : StringCtor(value);
  }

  function describeThrown(thrown) {
    let name = 'Error';
    let message = '';
    let stack = '';
    try {
      if (thrown instanceof ErrorCtor) {
        name = toText(thrown.name);
        message = toText(thrown.message);
        stack = toText(thrown.stack);
      } else {
        message = 'the strategy threw a value that is not an Error: ' + toText(thrown);
      }
    } catch (describeError) {
      // The thrown value's own getters or toString threw; keep what was read so far.
      message = message === '' ? 'the strategy threw a value that could not be converted to text' : message;
    }
    return { name: clip(name, 200), message: clip(message, MAX_ERROR_TEXT_LENGTH), stack: clip(stack, MAX_ERROR_TEXT_LENGTH) };
  }

  function failure(failedPhase, bar, thrown) {
    const description = describeThrown(thrown);
    return { status: 'error', phase: failedPhase, bar: bar, name: description.name, message: description.message, stack: description.stack };
  }

  // Sends the host the bar reached and the orders placed since the previous report. Every
  // order of an earlier bar is then in some report, which rederivation.ts relies on.
  function sendProgress() {
    const from = reportedOrders * 3;
    reportedOrders = orderCount;
    progressSink(t, orders.slice(from, orderCount * 3));
  }

  // Reports progress at adaptive intervals. The stride between checks doubles while checks come
  // faster than PROGRESS_INTERVAL_MS and halves when they come slower, so a fast loop pays for a
  // few dozen host calls per run and a slow one reports nearly every bar.
  function reportProgress() {
    const now = RealDateNow();
    const elapsed = now - lastProgressMs;
    if (elapsed < PROGRESS_INTERVAL_MS) {
      if (progressStride < MAX_PROGRESS_STRIDE) progressStride *= 2;
    } else if (elapsed > 2 * PROGRESS_INTERVAL_MS && progressStride > 1) {
      progressStride = progressStride >>> 1;
    }
    lastProgressMs = now;
    nextProgressCheck = t + progressStride;
    sendProgress();
  }

  // Accounting mirror of simulate.ts: same formulas in the same order, so the strategy sees
  // what the host computes and the host can compare the final account bit for bit.
  function applyOrder(kind, value, price) {
    const cash = account[ACCOUNT_CASH];
    const position = account[ACCOUNT_POSITION];
    const commission = account[ACCOUNT_COMMISSION];
    let qty;
    if (kind === ORDER_KIND_QUANTITY) {
      qty = value;
    } else {
      const equity = cash + position * price;
      qty = (value * equity) / price - position;
      if (MathAbs(qty) * price <= TARGET_NOISE * MathAbs(equity)) return;
    }
    if (qty > 0) {
      const affordable = cash / (price * (1 + commission));
      if (!(affordable > 0)) return;
      if (qty >= affordable) {
        qty = affordable;
        account[ACCOUNT_CASH] = 0;
      } else {
        const notional = qty * price;
        account[ACCOUNT_CASH] = cash - (notional + notional * commission);
      }
      account[ACCOUNT_POSITION] = position + qty;
      fillCount++;
    } else if (qty < 0) {
      if (!(position > 0)) return;
      let sold = -qty;
      if (sold >= position) {
        sold = position;
        account[ACCOUNT_POSITION] = 0;
      } else {
        account[ACCOUNT_POSITION] = position - sold;
      }
      const notional = sold * price;
      account[ACCOUNT_CASH] = cash + (notional - notional * commission);
      fillCount++;
    }
  }

  function fillPendingOrders(price) {
    for (let k = pendingStart; k < orderCount; k++) applyOrder(orders[k * 3 + 1], orders[k * 3 + 2], price);
    pendingStart = orderCount;
  }

  function recordOrder(kind, value) {
    if (!handlingBar) throw new ErrorCtor('orders can be placed only while onBar runs');
    if (orderCount >= maxOrders) {
      if (limitHit === '') {
        limitHit = 'orders';
        limitBar = t;
      }
      throw new ErrorCtor('order limit of ' + maxOrders + ' orders reached');
    }
    if ((orderCount + 1) * 3 > orders.length) {
      const grown = new Float64ArrayCtor(MathMax(3 * 1024, orders.length * 2));
      grown.set(orders);
      orders = grown;
    }
    orders[orderCount * 3] = t;
    orders[orderCount * 3 + 1] = kind;
    orders[orderCount * 3 + 2] = value;
    orderCount++;
  }

  function checkQuantity(qty, name) {
    if (typeof qty !== 'number' || !NumberIsFinite(qty)) throw new RangeErrorCtor(name + ': quantity must be a finite number, got ' + toText(qty));
  }

  function formatLogValue(value) {
    if (typeof value === 'string') return clip(value, MAX_LOG_VALUE_LENGTH);
    if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return toText(value);
    try {
      const json = JSONStringify(value);
      return clip(typeof json === 'string' ? json : toText(value), MAX_LOG_VALUE_LENGTH);
    } catch (formatError) {
      return '[value that could not be printed]';
    }
  }

  function log(...values) {
    if (phase !== 'running') throw new ErrorCtor('ctx.log can be called only while init or onBar runs');
    if (logs.length >= maxLogLines) {
      if (limitHit === '') {
        limitHit = 'logs';
        limitBar = t;
      }
      throw new ErrorCtor('log line limit of ' + maxLogLines + ' lines reached');
    }
    let line = t >= 0 ? '[bar ' + t + ']' : '[init]';
    for (let k = 0; k < values.length; k++) line += ' ' + formatLogValue(values[k]);
    logs.push(clip(line, MAX_LOG_VALUE_LENGTH));
  }
`;

const RUNNER_CONTEXT = String.raw`
  function checkBarsAgo(barsAgo) {
    if (!NumberIsInteger(barsAgo) || barsAgo < 0) {
      throw new RangeErrorCtor('bars ago must be an integer >= 0 (later bars cannot be read), got ' + toText(barsAgo));
    }
  }

  function barsAgoReader(column) {
    return function readBarsAgo(barsAgo) {
      const offset = barsAgo === undefined ? 0 : barsAgo;
      checkBarsAgo(offset);
      if (t < 0 || offset > t) return NaN;
      return column()[t - offset];
    };
  }

  function indexReader(column) {
    return function readIndex(index) {
      if (!NumberIsInteger(index) || index < 0) throw new RangeErrorCtor('bar index must be an integer >= 0, got ' + toText(index));
      if (index > t) throw new RangeErrorCtor('bar ' + index + ' cannot be read: the current bar is ' + t + ' and later bars are not available');
      return column()[index];
    };
  }

  const columnOf = {
    time: function time() { return timeColumn; },
    open: function open() { return openColumn; },
    high: function high() { return highColumn; },
    low: function low() { return lowColumn; },
    close: function close() { return closeColumn; },
    volume: function volume() { return volumeColumn; },
  };

  function currentValue(column) {
    return t >= 0 ? column[t] : NaN;
  }

  // V8 (Node 24.21) keeps an object literal with getters in dictionary mode: each read from it
  // is a hash lookup and its getters are called, not inlined, at about 7 ns per read here.
  // Defining the same properties one by one on an empty object gives it a fast map, because in
  // a fresh isolate these property transitions are the first of their kind.
  function fastFrozenCopy(template) {
    const copy = {};
    const keys = ReflectOwnKeys(template);
    for (let k = 0; k < keys.length; k++) ObjectDefineProperty(copy, keys[k], ObjectGetOwnPropertyDescriptor(template, keys[k]));
    return ObjectFreeze(copy);
  }

  const bar = fastFrozenCopy({
    get index() { return t; },
    get time() { return currentValue(timeColumn); },
    get open() { return currentValue(openColumn); },
    get high() { return currentValue(highColumn); },
    get low() { return currentValue(lowColumn); },
    get close() { return currentValue(closeColumn); },
    get volume() { return currentValue(volumeColumn); },
  });

  const history = fastFrozenCopy({
    get length() { return t + 1; },
    time: indexReader(columnOf.time),
    open: indexReader(columnOf.open),
    high: indexReader(columnOf.high),
    low: indexReader(columnOf.low),
    close: indexReader(columnOf.close),
    volume: indexReader(columnOf.volume),
    closes: function closes(count) {
      if (!NumberIsInteger(count) || count < 0) throw new RangeErrorCtor('count must be an integer >= 0, got ' + toText(count));
      const length = MathMin(count, t + 1);
      return closeColumn.slice(t + 1 - length, t + 1);
    },
  });

  const state = {};

  const ctx = fastFrozenCopy({
    get params() { return params; },
    state: state,
    bar: bar,
    history: history,
    get position() { return account[ACCOUNT_POSITION]; },
    get cash() { return account[ACCOUNT_CASH]; },
    get equity() { return t >= 0 ? account[ACCOUNT_CASH] + account[ACCOUNT_POSITION] * closeColumn[t] : account[ACCOUNT_CASH]; },
    time: barsAgoReader(columnOf.time),
    open: barsAgoReader(columnOf.open),
    high: barsAgoReader(columnOf.high),
    low: barsAgoReader(columnOf.low),
    close: barsAgoReader(columnOf.close),
    volume: barsAgoReader(columnOf.volume),
    sma: sma,
    ema: ema,
    rsi: rsi,
    atr: atr,
    stddev: stddev,
    highest: highest,
    lowest: lowest,
    order: function order(qty) {
      checkQuantity(qty, 'ctx.order');
      if (qty !== 0) recordOrder(ORDER_KIND_QUANTITY, qty);
    },
    buy: function buy(qty) {
      checkQuantity(qty, 'ctx.buy');
      if (!(qty > 0)) throw new RangeErrorCtor('ctx.buy: quantity must be > 0, got ' + qty);
      recordOrder(ORDER_KIND_QUANTITY, qty);
    },
    sell: function sell(qty) {
      checkQuantity(qty, 'ctx.sell');
      if (!(qty > 0)) throw new RangeErrorCtor('ctx.sell: quantity must be > 0, got ' + qty);
      recordOrder(ORDER_KIND_QUANTITY, -qty);
    },
    targetPercent: function targetPercent(fraction) {
      if (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= 1)) {
        throw new RangeErrorCtor('ctx.targetPercent: fraction must be a number from 0 to 1, got ' + toText(fraction));
      }
      recordOrder(ORDER_KIND_TARGET_PERCENT, fraction);
    },
    log: log,
  });

  function isPromise(value) {
    try {
      return value instanceof PromiseCtor;
    } catch (checkError) {
      // A proxy's getPrototypeOf trap threw: the value is not a native promise.
      return false;
    }
  }
`;

const RUNNER_HOOKS = String.raw`
  function defineHook(name, hook) {
    ObjectDefineProperty(global, name, { value: hook, writable: false, enumerable: false, configurable: false });
  }

  defineHook('__backtestrSetup', function setup(time, open, high, low, close, volume, paramValues, settings, progress) {
    if (phase !== 'installed') throw new ErrorCtor('setup may run only once');
    const columns = [time, open, high, low, close, volume];
    for (let k = 0; k < columns.length; k++) {
      if (!(columns[k] instanceof Float64ArrayCtor) || columns[k].length !== time.length) throw new TypeErrorCtor('bar columns must be Float64Arrays of equal length');
    }
    if (typeof progress !== 'function') throw new TypeErrorCtor('progress must be a function');
    timeColumn = time;
    openColumn = open;
    highColumn = high;
    lowColumn = low;
    closeColumn = close;
    volumeColumn = volume;
    barCount = time.length;
    // A null prototype, so no inherited name reads as a parameter. Object.create(null) makes a
    // dictionary-mode object in V8, and every read from it is a hash lookup. An empty literal
    // whose prototype is cleared before its keys are defined stays in fast mode.
    const frozenParams = {};
    ObjectSetPrototypeOf(frozenParams, null);
    const keys = ReflectOwnKeys(paramValues);
    for (let k = 0; k < keys.length; k++) {
      ObjectDefineProperty(frozenParams, keys[k], { value: +paramValues[keys[k]], writable: true, enumerable: true, configurable: true });
    }
    params = ObjectFreeze(frozenParams);
    account[ACCOUNT_CASH] = settings.cash;
    account[ACCOUNT_POSITION] = 0;
    account[ACCOUNT_COMMISSION] = settings.commission;
    maxOrders = settings.maxOrders;
    maxLogLines = settings.maxLogLines;
    seedRandom(settings.seed);
    progressSink = progress;
    phase = 'loading';
  });

  defineHook('__backtestrRegister', function register(onBar, init) {
    if (phase !== 'loading' || registered) throw new ErrorCtor('the strategy was already registered');
    registered = true;
    onBarFunction = onBar;
    initFunction = init;
  });

  defineHook('__backtestrLoadFailed', function loadFailed(thrown) {
    if (phase === 'loading' && loadError === null) loadError = failure('load', -1, thrown);
  });

  defineHook('__backtestrProgress', function progress() {
    return t;
  });

  function limitResult() {
    return { status: 'limit', limit: limitHit, bar: limitBar };
  }

  defineHook('__backtestrRun', function run() {
    if (phase !== 'loading') return { status: 'error', phase: 'load', bar: -1, name: 'Error', message: 'the strategy ran the runner itself', stack: '' };
    phase = 'running';
    if (loadError !== null) return loadError;
    if (typeof onBarFunction !== 'function') return { status: 'missing-onbar' };

    if (initFunction !== undefined) {
      try {
        initFunction(ctx);
      } catch (thrown) {
        if (limitHit !== '') return limitResult();
        return failure('init', -1, thrown);
      }
      if (limitHit !== '') return limitResult();
    }

    // The hot loop: keep it free of allocations and of calls that are not needed on most bars.
    for (t = 0; t < barCount; t++) {
      if (t >= nextProgressCheck) reportProgress();
      if (pendingStart < orderCount) fillPendingOrders(openColumn[t]);
      handlingBar = true;
      let returned;
      try {
        returned = onBarFunction(ctx);
      } catch (thrown) {
        handlingBar = false;
        if (limitHit !== '') return limitResult();
        return failure('bar', t, thrown);
      }
      handlingBar = false;
      if (limitHit !== '') return limitResult();
      if (returned !== undefined && isPromise(returned)) {
        return { status: 'error', phase: 'bar', bar: t, name: 'TypeError', message: 'onBar returned a promise, but onBar must be a synchronous function', stack: '' };
      }
    }

    // Keep t on the last bar so that code still queued as microtasks reads no index past it.
    t = barCount - 1;
    phase = 'done';
    sendProgress();
    return {
      status: 'ok',
      bars: barCount,
      orders: orders.slice(0, orderCount * 3),
      logs: logs.slice(),
      account: { cash: account[ACCOUNT_CASH], position: account[ACCOUNT_POSITION], fills: fillCount },
    };
  });
`;

const RUNNER_HARDENING = String.raw`
  // Freeze every intrinsic reachable from the global object and lock the global bindings, so
  // strategy code can neither patch a prototype the runner uses nor rebind a global it reads.
  if (harden) {
    const seen = new WeakSetCtor();
    seen.add(global);
    const pending = [];
    const globalKeys = ReflectOwnKeys(global);
    for (let k = 0; k < globalKeys.length; k++) {
      const descriptor = ObjectGetOwnPropertyDescriptor(global, globalKeys[k]);
      if ('value' in descriptor) {
        pending.push(descriptor.value);
        if (descriptor.configurable) ObjectDefineProperty(global, globalKeys[k], { writable: false, configurable: false });
      } else {
        pending.push(descriptor.get, descriptor.set);
        if (descriptor.configurable) ObjectDefineProperty(global, globalKeys[k], { configurable: false });
      }
    }
    while (pending.length > 0) {
      const value = pending.pop();
      if (value === null || (typeof value !== 'object' && typeof value !== 'function') || seen.has(value)) continue;
      seen.add(value);
      ObjectFreeze(value);
      pending.push(ObjectGetPrototypeOf(value));
      const keys = ReflectOwnKeys(value);
      for (let k = 0; k < keys.length; k++) {
        const descriptor = ObjectGetOwnPropertyDescriptor(value, keys[k]);
        if ('value' in descriptor) pending.push(descriptor.value);
        else pending.push(descriptor.get, descriptor.set);
      }
    }
  }
`;

/** Clock, locale and memory changes to the realm (runner-realm.ts), made only when hardened. */
const RUNNER_REALM = '\n  if (harden) {\n' + RUNNER_CLOCK_SOURCE + RUNNER_MEMORY_SOURCE + '\n  }\n';

/** The runner's function body, with parameters `global` and `harden`. */
export const RUNNER_BODY = "'use strict';\n" + RUNNER_HEAD + RUNNER_REALM + RUNNER_INDICATORS_SOURCE + RUNNER_CONTEXT + RUNNER_HOOKS + RUNNER_HARDENING;

/** The script that installs the hardened runner into an isolate's global object. */
export const RUNNER_SOURCE = "'use strict';\n(function installBacktestrRunner(global, harden) {\n" + RUNNER_BODY + '\n})(globalThis, true);\n';
