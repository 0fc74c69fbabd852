import { toBase64 } from '../../model/encoding.ts';
import { FIELD_VALUE, metadataNameProblem, type ObjectSettings } from '../../model/object-settings.ts';

export type { ObjectSettings } from '../../model/object-settings.ts';
export { STORAGE_CLASS } from '../../model/object-settings.ts';

/**
 * A metadata value as a header: ASCII as it is, anything else as an RFC 2047 encoded word, which is
 * how S3 itself returns non-ASCII metadata (a raw UTF-8 byte in a header is refused or mangled).
 */
function metadataValue(value: string): string {
  if (FIELD_VALUE.test(value)) return value;
  const bytes = new TextEncoder().encode(value.toWellFormed());
  return `=?UTF-8?B?${toBase64(bytes)}?=`;
}

/** The headers of CreateMultipartUpload / PutObject that store `settings` with the object. */
export function objectSettingsHeaders(settings: ObjectSettings): Record<string, string> {
  const headers: Record<string, string> = {};
  if (settings.cacheControl) headers['Cache-Control'] = settings.cacheControl;
  if (settings.storageClass) headers['x-amz-storage-class'] = settings.storageClass;
  for (const [name, value] of Object.entries(settings.metadata ?? {})) {
    const problem = metadataNameProblem(name);
    if (problem) throw new Error(`S3 metadata name ${problem}`);
    headers[`x-amz-meta-${name}`] = metadataValue(value);
  }
  return headers;
}

/**
 * S3_METADATA: `name=value,name=value`, or a JSON object of strings (for values with commas).
 * Throws a short reason when it is neither.
 */
export function parseMetadataSetting(text: string): Record<string, string> {
  const trimmed = text.trim();
  let entries: [string, unknown][];
  if (trimmed.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      throw new Error('not valid JSON');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('expected a JSON object of strings');
    entries = Object.entries(parsed);
  } else {
    entries = trimmed
      .split(',')
      .filter((pair) => pair.trim())
      .map((pair) => {
        const at = pair.indexOf('=');
        if (at <= 0) throw new Error(`"${pair.trim()}" is not name=value`);
        return [pair.slice(0, at).trim(), pair.slice(at + 1).trim()];
      });
  }
  const metadata: Record<string, string> = {};
  for (const [name, value] of entries) {
    if (typeof value !== 'string') throw new Error(`the value of "${name}" is not a string`);
    const problem = metadataNameProblem(name);
    if (problem) throw new Error(problem);
    metadata[name] = value;
  }
  return metadata;
}
