import fs from 'node:fs';
import path from 'node:path';
import * as layout from '../../protocol/layout';

/** Rows of the drawing in protocol/layout.ts: offset, size (a number or "n"), field name. */
function drawnRows(): { offset: number; size: string; field: string }[] {
  const source = fs.readFileSync(path.join(__dirname, '..', '..', 'protocol', 'layout.ts'), 'utf8');
  const rows: { offset: number; size: string; field: string }[] = [];
  for (const match of source.matchAll(/^ \*\s+(\d+)\s+(\d+|n)\s+(.+?)\s*$/gm)) {
    rows.push({ offset: Number(match[1]), size: match[2], field: match[3] });
  }
  return rows;
}

describe('envelope layout drawing', () => {
  const rows = drawnRows();
  const expected: [string, number, number][] = [
    ['version', layout.VERSION_OFFSET, layout.VERSION_SIZE],
    ['kind', layout.KIND_OFFSET, layout.KIND_SIZE],
    ['sender id', layout.SENDER_OFFSET, layout.PEER_ID_SIZE],
    ['receiver id', layout.RECEIVER_OFFSET, layout.PEER_ID_SIZE],
    ['reserved', layout.RESERVED_OFFSET, layout.RESERVED_SIZE],
    ['sequence number', layout.SEQUENCE_OFFSET, layout.SEQUENCE_SIZE],
    ['timestamp', layout.TIMESTAMP_OFFSET, layout.TIMESTAMP_SIZE],
    ['ciphertext length', layout.LENGTH_OFFSET, layout.LENGTH_SIZE],
  ];

  test('has one row per header field plus the ciphertext', () => {
    expect(rows).toHaveLength(expected.length + 1);
  });

  test.each(expected)('row for %s matches its constants', (field, offset, size) => {
    const row = rows.find((candidate) => candidate.field.startsWith(field));
    expect(row).toBeDefined();
    expect(row!.offset).toBe(offset);
    expect(Number(row!.size)).toBe(size);
  });

  test('rows are contiguous and the ciphertext starts at HEADER_SIZE', () => {
    for (let i = 1; i < rows.length; i++) {
      expect(rows[i].offset).toBe(rows[i - 1].offset + Number(rows[i - 1].size));
    }
    expect(rows.at(-1)!.field).toMatch(/^ciphertext /);
    expect(rows.at(-1)!.offset).toBe(layout.HEADER_SIZE);
  });
});
