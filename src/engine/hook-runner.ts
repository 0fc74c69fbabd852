import { TusError } from '../model/errors.ts';
import type { Upload } from '../model/upload.ts';
import { HookFailure, PRE_HOOKS, type HookDecision, type HookRequest, type Hooks, type HookType } from '../hooks/types.ts';

/** Told when a hook failed (see EngineOptions.onHookError). */
export type HookErrorListener = (type: HookType, error: unknown, uploadId: string) => void;

/**
 * Runs the lifecycle hooks for the engine: pre-hooks are awaited and may refuse; post-hooks run in
 * the background, where their failures are reported and never felt by the upload. Each hook gets a
 * copy of the upload, so nothing it does changes the engine's.
 */
export class HookRunner {
  readonly #hooks: Hooks | undefined;
  readonly #onError: HookErrorListener | undefined;
  readonly #background = new Set<Promise<unknown>>();

  constructor(hooks: Hooks | undefined, onError: HookErrorListener | undefined) {
    this.#hooks = hooks;
    this.#onError = onError;
  }

  /**
   * A pre-hook: awaited; pre-create and pre-terminate may refuse (with the hook's status), a
   * pre-finish cannot (the bytes are all there: it is told, and the upload finishes).
   */
  async decide(type: HookType, upload: Upload, request?: HookRequest): Promise<HookDecision> {
    const hook = this.#hooks?.[type];
    if (!hook) return {};
    let decision: HookDecision;
    try {
      decision = (await hook({ type, upload: structuredClone(upload), request })) ?? {};
    } catch (error) {
      this.#failed(type, error, upload.id);
      if (type === 'pre-finish') return {};
      // A failure is no refusal: its text (a stack, a receiver's error page) is not for clients.
      throw new TusError('REJECTED', `the ${type} hook failed`, error instanceof HookFailure ? error.status : 500);
    }
    if (decision.reject && type !== 'pre-finish') {
      throw new TusError('REJECTED', decision.reject.message, decision.reject.status);
    }
    return decision;
  }

  /** A post-hook: runs in the background; its failure is reported, never felt by the upload. */
  emit(type: HookType, upload: Upload, request?: HookRequest): void {
    const hook = this.#hooks?.[type];
    if (!hook || PRE_HOOKS.includes(type)) return;
    const event = { type, upload: structuredClone(upload), request };
    const running = Promise.resolve()
      .then(() => hook(event))
      .catch((error: unknown) => this.#failed(type, error, upload.id));
    this.#background.add(running);
    void running.finally(() => this.#background.delete(running));
  }

  /** Settles when the background hooks started so far have (for shutdown and Workers' waitUntil). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#background]);
  }

  /** Each failure once, also of hooks that failed together (composed post-hooks run side by side). */
  #failed(type: HookType, error: unknown, uploadId: string): void {
    const failures: unknown[] = error instanceof AggregateError ? error.errors : [error];
    for (const failure of failures) this.#onError?.(type, failure, uploadId);
  }
}
