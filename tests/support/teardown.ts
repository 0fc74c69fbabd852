// Global teardown of `bun test` (preloaded by bunfig.toml): its afterAll runs once, after every
// test file. It stops the radosgw cluster the run started, so `npm test` returns with nothing
// left running (`bun test` emits no 'exit' event to hang this on).
import { afterAll } from 'bun:test';
import { stopS3 } from './s3.ts';

afterAll(() => stopS3());
