/**
 * Node entry: `npm run start:node` (node dist/runtime/node.js, after `npm run build`; also started
 * without its extension). Only starts the server: `tusflow` under Node imports node-server.ts, which
 * starts nothing by itself, so no check of how this file was started is needed.
 */
import { serveOnNode } from './node-server.ts';

await serveOnNode();
