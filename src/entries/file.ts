/** `tusflow/file`: bytes and records in a directory on this machine (one instance). Server-only: node:fs. */
export { FileDataStore } from '../storage/file/store.ts';
export { FileStateStore } from '../state/file.ts';
