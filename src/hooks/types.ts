import type { Upload } from '../engine/types.ts';
import type { Metadata } from '../protocol/metadata.ts';

/**
 * The lifecycle events, as tusd and @tus/server name them between them. `pre-*` hooks are awaited
 * and may refuse (pre-create may also change the metadata or the object key); every other hook runs
 * in the background and can never block or break an upload.
 */
export type HookType =
  | 'pre-create'
  | 'post-create'
  | 'post-receive'
  | 'pre-finish'
  | 'post-finish'
  | 'pre-terminate'
  | 'post-terminate';

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
}

export type HookHandler = (event: HookEvent) => void | HookDecision | Promise<void | HookDecision>;
export type Hooks = Partial<Record<HookType, HookHandler>>;

export const PRE_HOOKS: readonly HookType[] = ['pre-create', 'pre-finish', 'pre-terminate'];

/** Several hook sets as one: pre-hooks run in order (the first refusal wins, changes accumulate). */
export function composeHooks(...sets: (Hooks | undefined)[]): Hooks {
  const present = sets.filter((s): s is Hooks => s !== undefined);
  const out: Hooks = {};
  const types = new Set(present.flatMap((s) => Object.keys(s) as HookType[]));
  for (const type of types) {
    const handlers = present.map((s) => s[type]).filter((h): h is HookHandler => h !== undefined);
    out[type] = async (event) => {
      let decision: HookDecision = {};
      for (const handler of handlers) {
        const result = (await handler({ ...event, upload: { ...event.upload, ...(decision.metadata ? { metadata: decision.metadata } : {}) } })) ?? {};
        if (result.reject) return result;
        decision = { ...decision, ...result };
      }
      return decision;
    };
  }
  return out;
}
