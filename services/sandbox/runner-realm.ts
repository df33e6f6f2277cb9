/**
 * The parts of the in-isolate runner (runner-source.ts) that change the isolate's realm before
 * it is frozen, as source text. They run only when the runner is hardened, inside its closure,
 * after `barTime`, `random` and the captured intrinsics are defined.
 *
 * Clock, time zone and locale: every clock a strategy can read returns the bar time, local time
 * is UTC and the default locale is en-US, whatever the host's TZ and LANG are. V8 takes the time
 * zone and the locale from the process, so these are replaced in JavaScript: the Date
 * constructor, Date.parse, the local-time methods of Date.prototype, the Intl constructors and
 * the toLocale* and localeCompare methods.
 *
 * Memory: isolated-vm 7.0.1 counts neither WebAssembly memories nor resizable or growable
 * buffers against the isolate's memory limit, so the WebAssembly and SharedArrayBuffer globals
 * are removed and ArrayBuffer rejects the maxByteLength option.
 *
 * Kept as plain JavaScript without backticks or `${`, so it can live in a String.raw literal.
 */

export const RUNNER_CLOCK_SOURCE = String.raw`
  const FIXED_LOCALE = 'en-US';
  const FIXED_TIME_ZONE = 'UTC';
  const ObjectCtor = Object;
  const NumberCtor = Number;
  const SymbolToPrimitive = Symbol.toPrimitive;
  const WeakMapCtor = WeakMap;
  const weakMapGet = WeakMap.prototype.get;
  const weakMapSet = WeakMap.prototype.set;
  const regExpTest = RegExp.prototype.test;
  const stringReplace = String.prototype.replace;
  const stringTrim = String.prototype.trim;
  const DatePrototype = OriginalDate.prototype;
  const dateGetTime = DatePrototype.getTime;
  const dateGetTimezoneOffset = DatePrototype.getTimezoneOffset;
  const OriginalDateParse = OriginalDate.parse;
  const OriginalDateUTC = OriginalDate.UTC;

  function defineMethod(target, name, method) {
    ObjectDefineProperty(target, name, { value: method, writable: true, enumerable: false, configurable: true });
  }

  function timeValueOf(date) {
    return ReflectApply(dateGetTime, date, []);
  }

  // ToPrimitive with the default hint (ECMA-262 7.1.1), as the Date constructor applies it.
  function toPrimitiveDefault(value) {
    const exotic = value[SymbolToPrimitive];
    if (exotic !== undefined && exotic !== null) return ReflectApply(exotic, value, ['default']);
    const methods = ['valueOf', 'toString'];
    for (let k = 0; k < methods.length; k++) {
      const method = value[methods[k]];
      if (typeof method === 'function') {
        const result = ReflectApply(method, value, []);
        if (result === null || (typeof result !== 'object' && typeof result !== 'function')) return result;
      }
    }
    throw new TypeErrorCtor('Cannot convert object to primitive value');
  }

  // Formats without a zone: ISO date-only forms are UTC by the spec, and date-time forms
  // without Z or an offset are local time. The legacy formats that V8 also accepts are local
  // unless they carry a zone name or an offset.
  const ISO_DATE_ONLY = /^[+-]?\d{4,6}(?:-\d\d(?:-\d\d)?)?$/;
  const ZONE_OFFSET = /(?:Z|[+-]\d\d:?\d\d)$/i;
  const ZONE_NAME = /(?:^|[^A-Za-z])(?:UTC?|GMT|Z|[ECMP][SD]T)(?:$|[^A-Za-z])/i;
  const PARENTHESISED = /\([^)]*\)/g;

  function hasExplicitZone(text) {
    const trimmed = ReflectApply(stringTrim, ReflectApply(stringReplace, text, [PARENTHESISED, '']), []);
    return ReflectApply(regExpTest, ISO_DATE_ONLY, [trimmed]) || ReflectApply(regExpTest, ZONE_OFFSET, [trimmed]) || ReflectApply(regExpTest, ZONE_NAME, [trimmed]);
  }

  // Date.parse with UTC as the local time zone. V8 parses zone-less text in the host's zone, so
  // the host's offset at that instant is added back; in a process whose TZ is UTC it is 0.
  // NOTE: for legacy formats on a host outside UTC, hasExplicitZone recognises zone names and
  // offsets by pattern, so an unusual zone spelling is parsed as local time and shifted.
  function parseAsUtc(text) {
    const parsed = ReflectApply(OriginalDateParse, OriginalDate, [text]);
    if (parsed !== parsed) return parsed;
    const hostOffsetMinutes = ReflectApply(dateGetTimezoneOffset, ReflectConstruct(OriginalDate, [parsed]), []);
    if (hostOffsetMinutes === 0 || hasExplicitZone(text)) return parsed;
    return parsed - hostOffsetMinutes * 60000;
  }

  // The time value 'new Date(...args)' creates, with UTC as the local time zone.
  function timeValueFromArguments(args) {
    if (args.length === 0) return barTime();
    if (args.length >= 2) return ReflectApply(OriginalDateUTC, OriginalDate, args);
    let value = args[0];
    if (value !== null && (typeof value === 'object' || typeof value === 'function')) {
      try {
        return timeValueOf(value);
      } catch (notADate) {
        value = toPrimitiveDefault(value);
      }
    }
    if (typeof value === 'string') return parseAsUtc(value);
    return NumberCtor(value);
  }

  const DAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const MONTH_NAMES = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const UTC_ZONE_TEXT = 'GMT+0000 (Coordinated Universal Time)';

  function pad(value, width) {
    let text = StringCtor(value);
    while (text.length < width) text = '0' + text;
    return text;
  }

  // The date part of Date.prototype.toString (ECMA-262 21.4.4.41.2) in UTC.
  function utcDateText(date) {
    const year = date.getUTCFullYear();
    const yearText = year < 0 ? '-' + pad(-year, 4) : pad(year, 4);
    return DAY_NAMES[date.getUTCDay()] + ' ' + MONTH_NAMES[date.getUTCMonth()] + ' ' + pad(date.getUTCDate(), 2) + ' ' + yearText;
  }

  function utcTimeText(date) {
    return pad(date.getUTCHours(), 2) + ':' + pad(date.getUTCMinutes(), 2) + ':' + pad(date.getUTCSeconds(), 2) + ' ' + UTC_ZONE_TEXT;
  }

  function withDate(thisValue, format) {
    const time = timeValueOf(thisValue);
    if (time !== time) return 'Invalid Date';
    return format(ReflectConstruct(OriginalDate, [time]));
  }

  function utcToString(thisValue) {
    return withDate(thisValue, (date) => utcDateText(date) + ' ' + utcTimeText(date));
  }

  // Options for a date-time format with UTC as the default time zone. The strategy's options
  // object stays the prototype, so every other option is read from it as usual.
  function withUtcTimeZone(options) {
    if (options === undefined) return { timeZone: FIXED_TIME_ZONE };
    if (options === null) return options;
    const base = ObjectCtor(options);
    if (base.timeZone !== undefined) return options;
    const copy = ObjectCreate(base);
    ObjectDefineProperty(copy, 'timeZone', { value: FIXED_TIME_ZONE, writable: true, enumerable: true, configurable: true });
    return copy;
  }

  function localeOrFixed(locales) {
    return locales === undefined ? FIXED_LOCALE : locales;
  }

  // Date: 'new Date()' and Date.now() read the current bar's time instead of the clock, and
  // every conversion from local time treats local time as UTC.
  const BarDate = function Date(...args) {
    if (new.target === undefined) return utcToString(ReflectConstruct(OriginalDate, [barTime()]));
    return ReflectConstruct(OriginalDate, [timeValueFromArguments(args)], new.target);
  };
  ObjectDefineProperty(BarDate, 'length', { value: 7, writable: false, enumerable: false, configurable: true });
  BarDate.prototype = DatePrototype;
  BarDate.now = function now() {
    return barTime();
  };
  BarDate.parse = function parse(text) {
    return parseAsUtc(StringCtor(text));
  };
  BarDate.UTC = OriginalDateUTC;
  defineMethod(DatePrototype, 'constructor', BarDate);
  defineMethod(global, 'Date', BarDate);
  defineMethod(Math, 'random', random);

  const LOCAL_TO_UTC = [
    'FullYear', 'Month', 'Date', 'Day', 'Hours', 'Minutes', 'Seconds', 'Milliseconds',
  ];
  for (let k = 0; k < LOCAL_TO_UTC.length; k++) {
    const part = LOCAL_TO_UTC[k];
    defineMethod(DatePrototype, 'get' + part, DatePrototype['getUTC' + part]);
    if (part !== 'Day') defineMethod(DatePrototype, 'set' + part, DatePrototype['setUTC' + part]);
  }
  defineMethod(DatePrototype, 'getTimezoneOffset', function getTimezoneOffset() {
    const time = timeValueOf(this);
    return time !== time ? time : 0;
  });
  defineMethod(DatePrototype, 'getYear', function getYear() {
    const time = timeValueOf(this);
    return time !== time ? time : this.getUTCFullYear() - 1900;
  });
  // Annex B setYear: a year from 0 to 99 means 1900 to 1999; a NaN time starts from +0.
  defineMethod(DatePrototype, 'setYear', function setYear(year) {
    const time = timeValueOf(this);
    const value = NumberCtor(year);
    if (value !== value) return ReflectApply(DatePrototype.setTime, this, [NaN]);
    const whole = value < 0 ? -MathFloor(-value) : MathFloor(value);
    const fullYear = whole >= 0 && whole <= 99 ? 1900 + whole : value;
    const date = ReflectConstruct(OriginalDate, [time !== time ? 0 : time]);
    date.setUTCFullYear(fullYear);
    return ReflectApply(DatePrototype.setTime, this, [timeValueOf(date)]);
  });
  defineMethod(DatePrototype, 'toString', function toString() {
    return utcToString(this);
  });
  defineMethod(DatePrototype, 'toDateString', function toDateString() {
    return withDate(this, utcDateText);
  });
  defineMethod(DatePrototype, 'toTimeString', function toTimeString() {
    return withDate(this, utcTimeText);
  });
  const LOCALE_DATE_METHODS = ['toLocaleString', 'toLocaleDateString', 'toLocaleTimeString'];
  for (let k = 0; k < LOCALE_DATE_METHODS.length; k++) {
    const original = DatePrototype[LOCALE_DATE_METHODS[k]];
    const replacement = {
      [LOCALE_DATE_METHODS[k]](locales, options) {
        return ReflectApply(original, this, [localeOrFixed(locales), withUtcTimeZone(options)]);
      },
    }[LOCALE_DATE_METHODS[k]];
    defineMethod(DatePrototype, LOCALE_DATE_METHODS[k], replacement);
  }

  // Intl: each service constructor defaults to FIXED_LOCALE, and DateTimeFormat to UTC. The
  // wrapper becomes the prototype's constructor, so no path leads back to the original.
  const CALLABLE_INTL = ['Collator', 'DateTimeFormat', 'NumberFormat'];
  const INTL_SERVICES = ['Collator', 'DateTimeFormat', 'NumberFormat', 'PluralRules', 'RelativeTimeFormat', 'ListFormat', 'DisplayNames', 'Segmenter', 'DurationFormat'];
  function fixIntlDefaults(name) {
    const Original = Intl[name];
    if (typeof Original !== 'function') return;
    const callable = CALLABLE_INTL.indexOf(name) >= 0;
    const dateTime = name === 'DateTimeFormat';
    const Wrapper = function (locales, options) {
      if (new.target === undefined && !callable) throw new TypeErrorCtor("Constructor Intl." + name + " requires 'new'");
      const fixedOptions = dateTime ? withUtcTimeZone(options) : options;
      return ReflectConstruct(Original, [localeOrFixed(locales), fixedOptions], new.target === undefined ? Wrapper : new.target);
    };
    ObjectDefineProperty(Wrapper, 'name', { value: name, writable: false, enumerable: false, configurable: true });
    ObjectDefineProperty(Wrapper, 'length', { value: 0, writable: false, enumerable: false, configurable: true });
    ObjectDefineProperty(Wrapper, 'prototype', { value: Original.prototype, writable: false, enumerable: false, configurable: false });
    defineMethod(Wrapper, 'supportedLocalesOf', Original.supportedLocalesOf);
    defineMethod(Original.prototype, 'constructor', Wrapper);
    defineMethod(Intl, name, Wrapper);
  }
  for (let k = 0; k < INTL_SERVICES.length; k++) fixIntlDefaults(INTL_SERVICES[k]);
  // A non-standard V8 service that would keep the host's default locale.
  delete Intl.v8BreakIterator;

  // DateTimeFormat format() and formatToParts() without a date format 'now': the bar time.
  const DateTimeFormatPrototype = Intl.DateTimeFormat.prototype;
  const formatGetter = ObjectGetOwnPropertyDescriptor(DateTimeFormatPrototype, 'format').get;
  const formatToParts = DateTimeFormatPrototype.formatToParts;
  const barFormats = new WeakMapCtor();
  ObjectDefineProperty(DateTimeFormatPrototype, 'format', {
    get: function format() {
      const bound = ReflectApply(formatGetter, this, []);
      let barFormat = ReflectApply(weakMapGet, barFormats, [bound]);
      if (barFormat === undefined) {
        barFormat = (date) => bound(date === undefined ? barTime() : date);
        ReflectApply(weakMapSet, barFormats, [bound, barFormat]);
      }
      return barFormat;
    },
    set: undefined,
    enumerable: false,
    configurable: true,
  });
  defineMethod(DateTimeFormatPrototype, 'formatToParts', function formatToPartsAtBar(date) {
    return ReflectApply(formatToParts, this, [date === undefined ? barTime() : date]);
  });

  // The remaining locale-sensitive methods, with FIXED_LOCALE as their default locale.
  function fixLocaleArgument(target, name, localeIndex) {
    const original = target[name];
    if (typeof original !== 'function') return;
    const replacement = {
      [name](...args) {
        if (args[localeIndex] === undefined) args[localeIndex] = FIXED_LOCALE;
        return ReflectApply(original, this, args);
      },
    }[name];
    defineMethod(target, name, replacement);
  }
  fixLocaleArgument(Number.prototype, 'toLocaleString', 0);
  fixLocaleArgument(BigInt.prototype, 'toLocaleString', 0);
  fixLocaleArgument(String.prototype, 'localeCompare', 1);
  fixLocaleArgument(String.prototype, 'toLocaleUpperCase', 0);
  fixLocaleArgument(String.prototype, 'toLocaleLowerCase', 0);
`;

export const RUNNER_MEMORY_SOURCE = String.raw`
  // isolated-vm does not count these against the memory limit, and strategies need none.
  delete global.WebAssembly;
  delete global.SharedArrayBuffer;

  // ArrayBuffer without the maxByteLength option: a resizable buffer grows outside the limit.
  // The length is converted here, so no strategy code runs while the original is on the stack.
  const OriginalArrayBuffer = ArrayBuffer;
  const FixedArrayBuffer = function ArrayBuffer(length) {
    if (new.target === undefined) throw new TypeErrorCtor("Constructor ArrayBuffer requires 'new'");
    if (arguments.length > 1 && arguments[1] !== undefined) {
      throw new TypeErrorCtor('ArrayBuffer: the maxByteLength option is not available in the sandbox, because resizable buffers are not counted against the memory limit');
    }
    return ReflectConstruct(OriginalArrayBuffer, [+length], new.target);
  };
  ObjectDefineProperty(FixedArrayBuffer, 'prototype', { value: OriginalArrayBuffer.prototype, writable: false, enumerable: false, configurable: false });
  defineMethod(FixedArrayBuffer, 'isView', OriginalArrayBuffer.isView);
  ObjectDefineProperty(FixedArrayBuffer, Symbol.species, ObjectGetOwnPropertyDescriptor(OriginalArrayBuffer, Symbol.species));
  defineMethod(OriginalArrayBuffer.prototype, 'constructor', FixedArrayBuffer);
  defineMethod(global, 'ArrayBuffer', FixedArrayBuffer);
`;
