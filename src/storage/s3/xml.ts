/**
 * The few things read from S3's XML answers: the text of a tag, and the blocks of a repeated tag.
 * S3 responses are flat, machine-written documents with no attributes on the tags read here, CDATA
 * or comments, so a tight reader is enough and keeps a parser dependency out of every runtime.
 */

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function decodeXml(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, entity: string) => {
    if (entity[0] !== '#') return ENTITIES[entity.toLowerCase()]!;
    const code = entity[1] === 'x' || entity[1] === 'X' ? parseInt(entity.slice(2), 16) : parseInt(entity.slice(1), 10);
    return String.fromCodePoint(code);
  });
}

/** The raw inner XML of every `<tag>…</tag>` (tags with attributes included), in order. */
export function blocks(xml: string, tag: string): string[] {
  const out: string[] = [];
  const pattern = new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`, 'g');
  for (const match of xml.matchAll(pattern)) out.push(match[1]!);
  return out;
}

/** The decoded text of the first `<tag>`, or undefined. */
export function text(xml: string, tag: string): string | undefined {
  const inner = blocks(xml, tag)[0];
  return inner === undefined ? undefined : decodeXml(inner);
}

export function escapeXml(value: string): string {
  return value.replace(/[<>&"']/g, (c) => `&${{ '<': 'lt', '>': 'gt', '&': 'amp', '"': 'quot', "'": 'apos' }[c]};`);
}
