/**
 * ISO 8601 calendar dates (YYYY-MM-DD) as whole days since 1970-01-01 UTC, which is how DuckDB
 * stores a DATE. Times of day and time zones are not part of a daily bar.
 */

export const MS_PER_DAY = 86_400_000;

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/**
 * Converts 'YYYY-MM-DD' to days since 1970-01-01, or returns undefined when the text is not
 * that form or not a real calendar date (2021-02-29 and 2020-13-01 are rejected).
 */
export function parseIsoDate(text: string): number | undefined {
  const match = ISO_DATE.exec(text);
  if (match === null) return undefined;

  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = Number(match[3]);
  // Date.UTC rolls an out-of-range day or month over into the next one, so a date is real only
  // when the components survive the round trip. Years 0-99 are mapped to 1900-1999 by Date.UTC,
  // which the round trip also catches.
  const ms = Date.UTC(year, month - 1, day);
  const date = new Date(ms);
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) {
    return undefined;
  }
  return ms / MS_PER_DAY;
}

/** Formats days since 1970-01-01 as 'YYYY-MM-DD'. */
export function formatIsoDate(days: number): string {
  return new Date(days * MS_PER_DAY).toISOString().slice(0, 10);
}
