import { serializeMetadata } from '../protocol/metadata.ts';
import { expiryHeader, type Handler } from './context.ts';

export const head: Handler = async ({ engine, id }) => {
  const upload = await engine.get(id);
  const headers: Record<string, string> = {
    'Upload-Offset': String(upload.offset),
    'Cache-Control': 'no-store',
    ...expiryHeader(upload),
  };
  if (upload.length === undefined) headers['Upload-Defer-Length'] = '1';
  else headers['Upload-Length'] = String(upload.length);
  const metadata = serializeMetadata(upload.metadata);
  if (metadata) headers['Upload-Metadata'] = metadata;
  return new Response(null, { status: 200, headers });
};
