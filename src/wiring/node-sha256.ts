import { createHash } from 'node:crypto';
import type { S3Features } from './env-stores.ts';

/** node:crypto's streaming SHA-256 (native on Node and Deno), for the parts' signed payload hash. */
export const nodeSha256: NonNullable<S3Features['sha256']> = () => createHash('sha256');
