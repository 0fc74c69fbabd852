import { CHECKSUM_ALGORITHMS } from '../protocol/checksum.ts';
import { TUS_VERSION } from '../protocol/constants.ts';
import type { Handler } from './context.ts';

export const EXTENSIONS = [
  'creation', 'creation-with-upload', 'creation-defer-length', 'termination', 'expiration', 'checksum',
  'concatenation', 'concatenation-unfinished',
];

/** Discovery: what this server speaks. Tus-Resumable is not required here. */
export const options: Handler = ({ engine }) => {
  const headers: Record<string, string> = {
    'Tus-Version': TUS_VERSION,
    'Tus-Extension': EXTENSIONS.join(','),
    'Tus-Checksum-Algorithm': CHECKSUM_ALGORITHMS.join(','),
  };
  if (engine.maxSize !== undefined) headers['Tus-Max-Size'] = String(engine.maxSize);
  return new Response(null, { status: 204, headers });
};
