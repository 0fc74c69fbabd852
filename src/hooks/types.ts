import type { Upload } from '../model/upload.ts';
import type { Metadata } from '../model/upload.ts';
import type { ObjectSettings } from '../model/object-settings.ts';

/**
 * The lifecycle events, as tusd and @tus/server name them between them. `pre-*` hooks are awaited
 * and may refuse (pre-create may also change the metadata or the object key); every other hook runs
 * in the background and can never block or break an upload.
 */
export type HookType = 'pre-create' | 'post-create' | 'post-receive' | 'pre-finish' | 'post-finish' | 'pre-terminate' | 'post-terminate';

/** The request that caused an event, as far as hooks need it. */
export interface HookRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  remoteAddress?: string;
}

export interface HookEvent {
  type: HookType;
  upload: Upload;
  request?: HookRequest;
}

/** What a pre-hook may answer: refuse with a status and message, or (pre-create) change things. */
export interface HookDecision {
  reject?: { status: number; message: string };
  metadata?: Metadata;
  /** The object's key in storage (S3), instead of the upload id. */
  key?: string;
  /** Cache-Control, storage class and user metadata of the stored object (S3), over the server's. */
  object?: ObjectSettings;
}

export type HookHandler = (event: HookEvent) => void | HookDecision | Promise<void | HookDecision>;
export type Hooks = Partial<Record<HookType, HookHandler>>;

export const PRE_HOOKS: readonly HookType[] = ['pre-create', 'pre-finish', 'pre-terminate'];

/**
 * A hook that could not do its job (a webhook receiver that failed, timed out or was unreachable),
 * as opposed to one that refused. The message is a short reason for the log, never for clients;
 * `status` is what a refused request is answered with.
 */
export class HookFailure extends Error {
  override name = 'HookFailure';
  constructor(
    reason: string,
    readonly status = 500,
  ) {
    super(reason);
  }
}

/**
 * Several hook sets as one: pre-hooks run in order (the first refusal wins, changes accumulate);
 * post-hooks run side by side, so one that fails or retries neither stops nor delays the others.
 */
export function composeHooks(...sets: (Hooks | undefined)[]): Hooks {
  const present = sets.filter((s): s is Hooks => s !== undefined);
  const out: Hooks = {};
  const types = new Set(present.flatMap((s) => Object.keys(s) as HookType[]));
  for (const type of types) {
    const handlers = present.map((s) => s[type]).filter((h): h is HookHandler => h !== undefined);
    out[type] = PRE_HOOKS.includes(type) ? inOrder(handlers) : sideBySide(handlers);
  }
  return out;
}

function inOrder(handlers: HookHandler[]): HookHandler {
  return async (event) => {
    let decision: HookDecision = {};
    for (const handler of handlers) {
      const result = (await handler({ ...event, upload: { ...event.upload, ...(decision.metadata ? { metadata: decision.metadata } : {}) } })) ?? {};
      if (result.reject) return result;
      decision = { ...decision, ...result };
    }
    return decision;
  };
}

/** Settles when all have; several failures reject together (an AggregateError), each reported. */
function sideBySide(handlers: HookHandler[]): HookHandler {
  return async (event) => {
    const results = await Promise.allSettled(handlers.map(async (handler) => handler({ ...event, upload: { ...event.upload } })));
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r): unknown => r.reason);
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, `${failures.length} ${event.type} hooks failed`);
  };
}
