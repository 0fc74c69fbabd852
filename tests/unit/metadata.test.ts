import { expect, test } from 'bun:test';
import fc from 'fast-check';
import { bytesToValue, encodeBase64, metadataSchema, serializeMetadata, valueToBytes } from '../../src/protocol/metadata.ts';

const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

test('any bytes survive as a value: decoded, then encoded, they are the same bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      expect(valueToBytes(bytesToValue(bytes))).toEqual(bytes);
    }),
    { numRuns: 5_000 },
  );
  // A byte-order mark, and sequences that look like UTF-8 but are not: overlong, surrogates, past
  // U+10FFFF, cut short.
  for (const bytes of [
    [0xef, 0xbb, 0xbf, 0x61],
    [0xc0, 0xaf],
    [0xe0, 0x80, 0xaf],
    [0xed, 0xa0, 0x80],
    [0xf4, 0x90, 0x80, 0x80],
    [0xe2, 0x82],
    [0xff],
    [0xf0, 0x9f, 0x98],
  ]) {
    expect(valueToBytes(bytesToValue(Uint8Array.from(bytes)))).toEqual(Uint8Array.from(bytes));
  }
});

test('text stays text: UTF-8 decodes to the same string as TextDecoder gives, and encodes back alike', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (text) => {
      const bytes = new TextEncoder().encode(text);
      expect(bytesToValue(bytes)).toBe(text);
      expect(valueToBytes(text)).toEqual(bytes);
    }),
    { numRuns: 5_000 },
  );
});

test('a binary Upload-Metadata value is kept and echoed byte for byte', () => {
  const binary = Uint8Array.of(0xff, 0xfe, 0x00, 0x80, 0x61, 0xc3, 0xa9);
  const header = `blob ${base64(binary)},name ${encodeBase64('café')},flag`;
  const metadata = metadataSchema.parse(header);
  expect(metadata.name).toBe('café');
  expect(metadata.blob).toBe('\udcff\udcfe\u0000\udc80aé');
  expect(metadata.flag).toBeNull();
  expect(serializeMetadata(metadata)).toBe(header);
  // And through JSON, as the state stores keep it.
  expect(serializeMetadata(JSON.parse(JSON.stringify(metadata)))).toBe(header);
});
