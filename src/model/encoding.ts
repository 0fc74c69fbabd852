/** Bytes as text: one encoder of each kind for every layer (ids, digests, signatures, headers). */

/** Lowercase hex, two digits a byte. */
export const toHex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

/** Standard base64, padded (btoa takes one char per byte; built a char at a time, so any size fits). */
export function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
