/**
 * ISO 8601 calendar dates (YYYY-MM-DD, proleptic Gregorian calendar, years 0000-9999) as whole
 * days since 1970-01-01 UTC, which is how DuckDB stores a DATE. Times of day and time zones are
 * not part of a daily bar.
 */

export const MS_PER_DAY = 86_400_000;

const DIGIT_ZERO = 0x30;
const HYPHEN = 0x2d;

/**
 * Converts 'YYYY-MM-DD' to days since 1970-01-01, or returns undefined when the text is not
 * that form or not a real calendar date (2021-02-29 and 2020-13-01 are rejected).
 *
 * It reads character codes instead of using a RegExp and Date because a CSV import calls it once
 * per row, up to a few million times.
 */
export function parseIsoDate(text: string): number | undefined {
  if (text.length !== 10 || text.charCodeAt(4) !== HYPHEN || text.charCodeAt(7) !== HYPHEN) return undefined;

  const year = readDigits(text, 0, 4);
  const month = readDigits(text, 5, 2);
  const day = readDigits(text, 8, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  return daysFromCivil(year, month, day);
}

/** Formats days since 1970-01-01 as 'YYYY-MM-DD'. */
export function formatIsoDate(days: number): string {
  return new Date(days * MS_PER_DAY).toISOString().slice(0, 10);
}

/** Returns the decimal value of `length` digits at `start`, or -1 if any of them is not a digit. */
function readDigits(text: string, start: number, length: number): number {
  let value = 0;
  for (let i = start; i < start + length; i++) {
    const digit = text.charCodeAt(i) - DIGIT_ZERO;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) {
    const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
    return leap ? 29 : 28;
  }
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * Counts days from 1970-01-01 to a valid date. The year is taken to start on 1 March, so the
 * leap day falls at its end, and is split into 400-year eras of 146,097 days each.
 */
function daysFromCivil(year: number, month: number, day: number): number {
  const marchYear = month <= 2 ? year - 1 : year;
  const era = Math.floor(marchYear / 400);
  const yearOfEra = marchYear - era * 400;
  const monthFromMarch = (month + 9) % 12;
  const dayOfYear = Math.floor((153 * monthFromMarch + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  // 719,468 days lie between 0000-03-01, the start of era 0, and 1970-01-01.
  return era * 146_097 + dayOfEra - 719_468;
}
