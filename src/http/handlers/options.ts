import { CHECKSUM_ALGORITHMS } from '../../model/checksum.ts';
import { OFFSET_CONTENT_TYPE, TUS_VERSION } from '../../protocol/constants.ts';
import { PARTIAL_UPLOAD, uploadLimit } from '../../protocol/ietf.ts';
import type { Capabilities } from '../../engine/capabilities.ts';
import type { Handler } from './context.ts';

/**
 * The tus extensions the server offers with a store of these capabilities (as tusd's composer
 * has it): what every store can do, plus what the store's optional methods allow.
 */
export function tusExtensions(can: Capabilities): string[] {
  return [
    'creation',
    'creation-with-upload',
    ...(can.deferredLength ? ['creation-defer-length'] : []),
    'termination',
    'expiration',
    'checksum',
    ...(can.concatenation ? ['concatenation', 'concatenation-unfinished'] : []),
  ];
}

/**
 * Discovery: what this server speaks, for tus (Tus-Resumable is not required here) and for the IETF
 * draft (Upload-Limit, and Accept-Patch for its append media type).
 */
export const options: Handler = ({ engine, options: opts }) => {
  const headers: Record<string, string> = {
    'Tus-Version': TUS_VERSION,
    'Tus-Extension': tusExtensions(engine.capabilities).join(','),
    'Tus-Checksum-Algorithm': CHECKSUM_ALGORITHMS.join(','),
    'Accept-Patch': `${OFFSET_CONTENT_TYPE}, ${PARTIAL_UPLOAD}`,
    ...uploadLimit(8, engine.maxSize, opts.uploadTtlSeconds),
  };
  if (engine.maxSize !== undefined) headers['Tus-Max-Size'] = String(engine.maxSize);
  return new Response(null, { status: 204, headers });
};
