import { isMisconfigured, TusError } from '../model/errors.ts';
import { withTimeout } from '../model/async.ts';
import type { Checksum } from '../model/checksum.ts';
import { digestOf, restoreHash, startHash, type DigestAlgorithm, type RunningHash, type UploadDigest } from '../model/digest.ts';
import type { Metadata } from '../model/upload.ts';
import type { DataStore } from '../storage/types.ts';
import type { ByteRange } from '../model/upload.ts';
import type { Lease, LockOptions, Locker, RecordFields, StateStore } from '../state/types.ts';
import { meterBody } from './body.ts';
import { NO_METRICS, type Metrics } from '../model/metrics.ts';
import type { HookRequest, Hooks, HookType } from '../hooks/types.ts';
import { capabilitiesOf, type Capabilities } from './capabilities.ts';
import { removeExpired } from './cleanup.ts';
import { HookRunner } from './hook-runner.ts';
import { isUploadId, isUploadName, newUploadId } from '../model/id.ts';
import { isFinal, isFinished, type Transfer, type Upload } from '../model/upload.ts';
import { objectSettingsProblem, pickObjectSettings } from '../model/object-settings.ts';
import { isWriting } from '../model/progress.ts';
import { directUploadsOf, type DirectPart, type DirectUploads } from '../storage/direct.ts';

export interface EngineOptions {
  /** Where uploads, bytes and lock waits are counted. */
  metrics?: Metrics;
  store: DataStore;
  state: StateStore;
  locker: Locker;
  /** Largest upload accepted, in bytes. */
  maxSize?: number;
  /** Least time between two progress records of one PATCH in the state store. */
  progressIntervalMs?: number;
  /** How long an unfinished upload lives after its last write. */
  ttlMs: number;
  /** A PATCH whose body brings no byte for this long ends there, as if its client had gone. */
  bodyIdleTimeoutMs?: number;
  hooks?: Hooks;
  /**
   * Told when a hook failed: threw, or (webhooks) gave up or could not answer. A background hook's
   * failure never affects the upload; a pre-hook's refuses the request with a generic reason, so
   * this is where its detail goes.
   */
  onHookError?(type: HookType, error: unknown, uploadId: string): void;
  now?: () => number;
}

export interface Body {
  stream: ReadableStream<Uint8Array>;
  /** From Content-Length when the client sent one: lets an oversized body be refused unread. */
  size?: number;
  checksum?: Checksum;
  /** The request's signal: aborts when the client goes away. */
  signal?: AbortSignal;
}

export interface AppendOptions {
  /** Upload-Length sent with this request (a deferred length being declared). */
  length?: number;
  /** The client says this body ends the upload: an unknown length becomes the final offset. */
  completes?: boolean;
  /** Refuse, rather than accept as a no-op, an append to an upload that is already complete. */
  finishedIsError?: boolean;
  /** A whole-upload digest sent with this request (Repr-Digest). */
  digest?: DigestRequest;
  request?: HookRequest;
  /**
   * The user authentication named (undefined: none): another user's upload is refused. Required so
   * that no caller can leave it out: where the locker `checksOwner`, a PATCH is not authorized
   * before it gets here (see `checksOwnerAtLock`).
   */
  owner: string | undefined;
}

/** A whole-upload digest a request asks for: to be computed, and checked against `expected` (base64) if given. */
export interface DigestRequest {
  algorithm: DigestAlgorithm;
  expected?: string;
}

/** How an append's body ended in storage. */
interface Written {
  /** The new durable offset. */
  offset: number;
  /** Storage showed the upload already complete (an earlier request completed it and its answer was lost). */
  completedBefore: boolean;
  /** The body was cut (client gone, idle, shutdown) rather than ended by its client. */
  interrupted: boolean;
  /** Bytes of the body read from the client. */
  received: number;
  /** The whole-upload digest, run over this body too. */
  running?: RunningHash;
}

export interface CreateInput {
  /** Undefined for a deferred length. */
  length?: number;
  metadata: Metadata;
  /** A partial upload, to be concatenated into a final one. */
  partial?: boolean;
  owner?: string;
  /** The whole-upload digest to compute (Want-Repr-Digest), or to check at completion (Repr-Digest). */
  digest?: DigestRequest;
  request?: HookRequest;
  /** The client sends the bytes straight to storage (see `signParts`): the length is known when it completes. */
  direct?: boolean;
  /** …in one form POST (see `createSingle`) rather than in parts. */
  single?: boolean;
}

/** S3's smallest part (but the last): a direct upload of MAX_SIZE bytes needs no more parts than MAX_SIZE / this. */
const MIN_PART_BYTES = 5 * 1024 * 1024;
/** A direct upload's expiry moves on when parts are signed, but at most once a minute (a state write under its lock). */
const EXPIRY_STEP_MS = 60_000;
/** How long a direct upload's listed offset is reused (see `#withDirectOffset`). */
const DIRECT_OFFSET_MS = 3000;
/** How long a presigned part URL is valid. */
const PART_URL_SECONDS = 900;
/**
 * How long a creation's reservation of its object key lasts until the record is saved: far longer
 * than a creation takes (its storage calls give up well before), so a server that stopped mid-way
 * holds the key no longer than this.
 */
const KEY_TERM_MS = 10 * 60_000;
/**
 * How long a form POST's policy lets the client store its object (at most; never past the record's
 * expiry). S3 takes any number of POSTs with it until then, so the upload is finished only once it
 * has expired, and a removed one keeps its record and key until then (see `#tombstone`).
 */
const POST_SECONDS = 120;

/** What a request asked for that needs a capability, as its refusal names it. */
const REQUIRES: Record<keyof Capabilities, string> = {
  concatenation: 'concatenation (Upload-Concat)',
  deferredLength: 'creation-defer-length (an upload whose length is not known at creation)',
};

/** Object keys a hook may choose: printable, relative, without `.` or `..` segments. */
const SAFE_KEY = /^(?!\/)(?!(?:.*\/)?\.\.?(?:\/|$))[\x21-\x7e][\x20-\x7e]{0,899}$/;

/**
 * The upload lifecycle: create, append, finish, read, terminate, concatenate. It knows no HTTP and
 * no storage technology; it owns the rules that keep bytes safe — one writer per upload, offsets
 * only move after the store says the bytes are durable, and nothing past the length is ever stored.
 * Hooks run beside it (hook-runner.ts), and so does the sweep of expired uploads (cleanup.ts).
 */
export class UploadEngine {
  readonly #o: EngineOptions;
  readonly #now: () => number;
  readonly #metrics: Metrics;
  /**
   * One controller per request holding a lock, aborted on shutdown so in-flight PATCHes commit what
   * arrived and answer. (Not one shared signal: Workers forbid an I/O object created in one request
   * from being used in another, and an AbortSignal is one.)
   */
  readonly #active = new Set<AbortController>();
  #stopping = false;
  /** Appends taking in bytes right now. */
  #receiving = 0;
  readonly #inflight = new Set<Promise<unknown>>();
  /** Direct uploads' offsets as last listed, and when (see `#withDirectOffset`). */
  readonly #directOffsets = new Map<string, { at: number; offset: number }>();
  readonly #hooks: HookRunner;
  /** What the data store allows beyond what every store does (the extensions the server offers). */
  readonly capabilities: Capabilities;

  constructor(options: EngineOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#metrics = options.metrics ?? NO_METRICS;
    this.#hooks = new HookRunner(options.hooks, options.onHookError);
    this.capabilities = capabilitiesOf(options.store);
  }

  get maxSize(): number | undefined {
    return this.#o.maxSize;
  }

  async create(input: CreateInput): Promise<Upload> {
    // Refused before anything is created: the store could not serve such an upload to its end.
    if (input.partial) this.#require('concatenation');
    const direct = input.direct ? this.#direct() : undefined;
    if (input.length === undefined && !direct) this.#require('deferredLength');
    if (input.length !== undefined) this.#checkSize(input.length);
    const now = this.#now();
    const upload: Upload = {
      id: newUploadId(),
      offset: 0,
      length: input.length,
      metadata: input.metadata,
      createdAt: now,
      expiresAt: now + this.#o.ttlMs,
    };
    if (input.partial) upload.concat = 'partial';
    if (input.owner !== undefined) upload.owner = input.owner;
    if (input.digest) {
      upload.digest = { ...input.digest, state: startHash(input.digest.algorithm).save() };
      // An empty upload is complete at creation: its digest is checked now.
      if (isFinished(upload)) upload.digest = checkDigest(upload.digest, startHash(upload.digest.algorithm));
    }
    await this.#preCreate(upload, input.request);
    await this.#releaseKeyOnFailure(upload, async () => {
      const fields = await this.#storage(() => (direct ? (input.single ? direct.createSingle(upload) : direct.create(upload)) : this.#o.store.create(upload)));
      if (fields) upload.store = fields;
      if (input.single && upload.store) upload.store.postUntil = String(upload.createdAt + this.#postMs());
      if (isFinished(upload)) await this.#finish(upload, input.request);
      await this.#putNew(upload);
    });
    this.#metrics.inc('tusflow_uploads_created_total');
    this.#hooks.emit('post-create', upload, input.request);
    if (isFinished(upload)) this.#finished(upload, input.request);
    return upload;
  }

  #finished(upload: Upload, request?: HookRequest): void {
    this.#metrics.inc('tusflow_uploads_finished_total');
    this.#hooks.emit('post-finish', upload, request);
  }

  /**
   * Runs pre-create, which may refuse, or change the metadata or the object key. A key it chooses
   * is reserved for this upload here: two uploads at one key would overwrite (and delete) each
   * other's bytes.
   */
  async #preCreate(upload: Upload, request?: HookRequest): Promise<void> {
    const decision = await this.#hooks.decide('pre-create', upload, request);
    if (decision.metadata) upload.metadata = decision.metadata;
    if (decision.object !== undefined) {
      const problem = objectSettingsProblem(decision.object);
      // The hook's fault, not the client's: answered as a hook that failed.
      if (problem) throw new TusError('REJECTED', `the pre-create hook chose object settings that cannot be stored: ${problem}`, 500);
      // Only the known fields are kept: the record saves what it is given.
      upload.object = pickObjectSettings(decision.object);
    }
    if (decision.key !== undefined) {
      if (!SAFE_KEY.test(decision.key)) throw new TusError('INVALID_KEY', decision.key.slice(0, 100));
      // Those names belong to uploads by id and their helper objects (`<id>.info` decides who owns an upload).
      if (isUploadName(decision.key)) throw new TusError('INVALID_KEY', 'it names an upload by its id');
      upload.key = decision.key;
      await this.#claimKey(upload, decision.key);
    }
  }

  /**
   * Reserves the key in the state store (atomic: of two creates, one wins), then asks storage
   * whether an upload whose reservation was lost (a wiped state store) is there already.
   */
  async #claimKey(upload: Upload, key: string): Promise<void> {
    if (!(await this.#stateCall(() => this.#o.state.claimKey(key, upload.id, KEY_TERM_MS)))) throw new TusError('KEY_TAKEN');
    await this.#releaseKeyOnFailure(upload, async () => {
      const store = this.#o.store;
      if (store.keyInUse && (await this.#storage(() => store.keyInUse!(key)))) throw new TusError('KEY_TAKEN');
    });
  }

  /**
   * Saves a new upload's record. The key it reserved becomes its own for good first: the other way
   * round, a stop in between would leave a record whose key another upload could take once the
   * term ran out (two uploads at one key), where this way it leaves at most a key held by no record.
   */
  async #putNew(upload: Upload): Promise<void> {
    const key = upload.key;
    if (key !== undefined && !(await this.#stateCall(() => this.#o.state.claimKey(key, upload.id)))) throw new TusError('KEY_TAKEN');
    await this.#stateCall(() => this.#o.state.put(upload));
  }

  /**
   * Runs the rest of a creation; if it fails, the key goes back (whatever storage it may have
   * started at the key still counts as in use, through `keyInUse`).
   */
  async #releaseKeyOnFailure(upload: Upload, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      await this.#releaseKey(upload).catch(() => {});
      throw error;
    }
  }

  async #releaseKey(upload: Upload): Promise<void> {
    const key = upload.key;
    if (key !== undefined) await this.#stateCall(() => this.#o.state.releaseKey(key, upload.id));
  }

  /** Whether the state store and the storage answer, and how fast (for `GET /health`). */
  async health(): Promise<Record<'state' | 'storage', { ok: boolean; ms: number; error?: string }>> {
    const probe = async (call: () => Promise<unknown>) => {
      const started = performance.now();
      try {
        await call();
        return { ok: true, ms: Math.round(performance.now() - started) };
      } catch (error) {
        return { ok: false, ms: Math.round(performance.now() - started), error: error instanceof Error ? error.message : String(error) };
      }
    };
    const [state, storage] = await Promise.all([probe(() => this.#o.state.get('0'.repeat(32))), probe(async () => this.#o.store.check?.())]);
    return { state, storage };
  }

  /**
   * Refuses with FORBIDDEN when authentication names an owner and the upload is someone else's;
   * answers the record it read for that (undefined when there was no owner to check), for `get`.
   */
  async authorize(id: string, owner: string | undefined): Promise<Upload | undefined> {
    if (owner === undefined) return undefined;
    return this.#load(id, { owner });
  }

  /**
   * Whether `append` checks the owner on the record its lock reads, before it touches the lock
   * (the Redis and Upstash state): a PATCH then needs no `authorize`, which saves it a state call.
   */
  get checksOwnerAtLock(): boolean {
    return this.#o.locker.checksOwner === true;
  }

  /**
   * Creates a final upload from partial uploads (by id, in order). Its bytes are assembled at once
   * when every partial is finished; otherwise (concatenation-unfinished) as soon as a request for
   * the final finds them all finished. The partials are locked while they are read.
   */
  async concatenate(partialIds: string[], metadata: Metadata, context: { owner?: string; request?: HookRequest } = {}): Promise<Upload> {
    this.#require('concatenation');
    if (partialIds.length === 0) throw new TusError('INVALID_CONCAT', 'no partial uploads');
    for (const id of new Set(partialIds)) await this.authorize(id, context.owner);
    const now = this.#now();
    const final: Upload = {
      id: newUploadId(),
      offset: 0,
      metadata,
      createdAt: now,
      expiresAt: now + this.#o.ttlMs,
      concat: { final: partialIds },
    };
    if (context.owner !== undefined) final.owner = context.owner;
    await this.#partials(final); // all exist and are partial
    await this.#preCreate(final, context.request);
    await this.#releaseKeyOnFailure(final, () => this.#putNew(final));
    this.#metrics.inc('tusflow_uploads_created_total');
    this.#hooks.emit('post-create', final, context.request);
    return this.#assemble(final);
  }

  /**
   * The final's partials, checked: they exist, are partial uploads, and fit the size limit
   * (`locked`: their locks are held).
   */
  async #partials(final: Upload, locked = false): Promise<Upload[]> {
    const ids = isFinal(final) ? final.concat.final : [];
    const partials = await Promise.all(
      ids.map((id) =>
        this.#load(id, { locked }).catch((error: unknown) => {
          if (error instanceof TusError) throw new TusError(error.code, `partial upload ${id}`);
          throw error;
        }),
      ),
    );
    const notPartial = partials.find((p) => p.concat !== 'partial');
    if (notPartial) throw new TusError('NOT_PARTIAL', notPartial.id);
    if (partials.every((p) => p.length !== undefined)) {
      const length = partials.reduce((sum, p) => sum + p.length!, 0);
      this.#checkSize(length);
      final.length = length;
    }
    return partials;
  }

  /**
   * Assembles a final upload whose partials are all finished; resolves with it as it now is.
   * Whether they are is read from their records, without their locks: taking a lock takes it over
   * from the PATCH that holds it, which would cut a partial still being written for a mere HEAD.
   * Only when all are finished are the locks taken (to assemble once), and then no writer is left.
   */
  async #assemble(final: Upload): Promise<Upload> {
    if (!isFinal(final) || final.finishedAt !== undefined) return final;
    if (!(await this.#partials(final)).every(isFinished)) return final;
    const ids = [...new Set([final.id, ...final.concat.final])].sort();
    return this.#withLocks(ids, async () => {
      const current = (await this.#stateCall(() => this.#o.state.get(final.id))) ?? final;
      if (current.finishedAt !== undefined) return current;
      const partials = await this.#partials(current, true);
      if (!partials.every(isFinished)) return current;
      this.#require('concatenation'); // a final upload made while the server had another store
      const store = this.#o.store;
      const fields = await this.#storage(() => store.concat!(current, partials));
      if (fields) current.store = fields;
      current.offset = current.length!;
      current.finishedAt = this.#now();
      delete current.expiresAt;
      await this.#stateCall(() => this.#o.state.put(current));
      this.#finished(current);
      return current;
    });
  }

  /**
   * The upload as a client may see it: unknown → NOT_FOUND, expired → GONE; a final upload whose
   * partials have all finished since it was created is assembled first. `loaded`: the record this
   * request read already (by `authorize`), instead of reading it again.
   */
  async get(id: string, loaded?: Upload): Promise<Upload> {
    const upload = loaded?.id === id ? loaded : await this.#load(id);
    if (isDirect(upload) && upload.finishedAt === undefined) return isSingle(upload) ? this.#finishIfStored(upload) : this.#withDirectOffset(upload);
    return isFinal(upload) && upload.finishedAt === undefined ? this.#assemble(upload) : upload;
  }

  /**
   * The upload's record, checked like `get`, as it is (for code that holds its lock: `locked`, or a
   * `lease`, whose record is read with the lock when it has one). Another user's upload is refused
   * whatever its state, as the lock's script refuses it (a removed or expired one is still someone
   * else's).
   */
  async #load(id: string, { lease, owner, locked = lease !== undefined }: { lease?: Lease; owner?: string; locked?: boolean } = {}): Promise<Upload> {
    if (!isUploadId(id)) throw new TusError('NOT_FOUND');
    const record = lease?.record !== undefined ? lease.record : await this.#stateCall(() => this.#o.state.get(id));
    const upload = record ?? (await this.#recover(id));
    if (upload) checkOwner(upload, owner);
    if (!upload || upload.store?.removed === '1') throw new TusError('NOT_FOUND');
    // An upload a PATCH is writing is in use, whatever its expiry says (the expiry moves when the
    // PATCH ends). Under the lock no PATCH runs: a transfer on the record is this request's, or a
    // dead one's.
    const now = this.#now();
    if (upload.expiresAt !== undefined && upload.expiresAt <= now && (locked || !isWriting(upload, now))) throw new TusError('GONE');
    return upload;
  }

  /**
   * Appends a body at `offset` and records how far it got: the lock is held throughout, the offset
   * moves only as far as storage says is durable, and the upload finishes with its last byte.
   */
  append(id: string, offset: number, body: Body, options: AppendOptions): Promise<Upload> {
    return this.#track(
      this.#withLock(
        id,
        async (signal, lease) => {
          // The owner is checked also on a record the lock did not read (a locker that does not, or one rebuilt from storage).
          const upload = await this.#load(id, { lease, owner: options.owner });
          if (isFinal(upload)) throw new TusError('FINAL_IS_READ_ONLY');
          if (isDirect(upload)) throw new TusError('DIRECT_UPLOAD');
          const wasFinished = isFinished(upload);
          if (options.length !== undefined) await this.#declareLength(upload, options.length);
          if (wasFinished && options.finishedIsError) throw new TusError('UPLOAD_FINISHED');
          expectOffset(upload, offset);
          const digest = options.digest && !wasFinished ? digestFor(upload, options.digest) : undefined;
          if (digest) upload.digest = digest;
          if (wasFinished) {
            // Nothing more can be stored; an empty body is a harmless retry of the last PATCH.
            await drainEmpty(body.stream);
            return upload;
          }
          // Counted while bytes are taken in: the active-uploads gauge.
          this.#metrics.set('tusflow_active_uploads', {}, ++this.#receiving);
          let written: Written;
          try {
            written = await this.#write(upload, body, signal, lease, options);
          } catch (error) {
            // Where the lease saves no records, the PATCH marked itself running with a write of its
            // own: a failed one is unmarked here (a successful one, with its offset).
            if (!lease.save) await this.#o.state.update(upload.id, { transfer: undefined }).catch(() => {});
            throw error;
          } finally {
            this.#metrics.set('tusflow_active_uploads', {}, --this.#receiving);
          }
          try {
            await this.#save(upload.id, await this.#record(upload, written, options), lease);
          } catch (error) {
            // A failure after the bytes were taken in (recording them): its log line says how many.
            if (error instanceof TusError) error.received ??= written.received;
            throw error;
          }
          this.#metrics.inc('tusflow_bytes_received_total', {}, written.offset - offset);
          this.#hooks.emit('post-receive', upload, options.request);
          if (isFinished(upload)) this.#finished(upload, options.request);
          return upload;
        },
        // The record is read with the lock, the PATCH marked as running on it, and (below) the new
        // offset saved with the release: two state calls in all, where the locker can.
        { read: true, transfer: this.#now(), owner: options.owner },
      ),
    );
  }

  /** Upload-Length sent with an append: sets a deferred length, or must be the one already set. */
  async #declareLength(upload: Upload, length: number): Promise<void> {
    if (upload.length !== undefined && upload.length !== length) throw new TusError('LENGTH_ALREADY_SET');
    if (length < upload.offset) throw new TusError('INVALID_LENGTH', 'smaller than the offset');
    this.#checkSize(length);
    if (upload.length !== undefined) return;
    upload.length = length;
    await this.#storeLength(upload);
  }

  /** Tells storage an upload's length once it is known (S3 writes it into the upload's .info object). */
  #storeLength(upload: Upload): Promise<void> {
    return this.#storage(async () => this.#o.store.declareLength?.(upload));
  }

  /**
   * Streams an append's body into storage, metered: never past the length (for a deferred length,
   * past the size limit), checked against its checksum, its progress recorded as it arrives.
   */
  async #write(upload: Upload, body: Body, signal: AbortSignal, lease: Lease, options: AppendOptions): Promise<Written> {
    // Whether a body that brought `received` bytes ends the upload.
    const completes = (received: number, interrupted: boolean) =>
      upload.length !== undefined ? upload.offset + received === upload.length : options.completes === true && !interrupted;
    const limit = (upload.length ?? this.#o.maxSize ?? Number.MAX_SAFE_INTEGER) - upload.offset;
    const overflow = upload.length === undefined ? 'TOO_LARGE' : 'EXCEEDS_LENGTH';
    if (body.size !== undefined && body.size > limit) throw new TusError(overflow);

    const running = runningHash(upload);
    const metered = meterBody(body.stream, {
      limit,
      overflow,
      checksum: body.checksum,
      running,
      signal,
      clientSignal: body.signal,
      idleTimeoutMs: this.#o.bodyIdleTimeoutMs,
    });
    // Bytes count before the body ends only without a checksum (which commits all or nothing), and
    // with a declared size (a body that passes the length is then refused unread: nothing stored).
    // So does a running digest: its state is saved with the offset, in the record that ends the
    // PATCH, so the offset may not move before (a crash would leave a state behind the offset).
    const early = body.checksum === undefined && running === undefined && body.size !== undefined;
    const progress = await this.#progress(upload, signal, lease);
    const written = await this.#storage(() =>
      this.#o.store.write(upload, metered.stream, {
        verify: () => {
          metered.verify();
          // The last byte is in: the digest is checked before the bytes count, so a mismatch stores
          // nothing. One whose running state is missing cannot be checked, so it does not complete.
          if (upload.digest && completes(metered.received, metered.interrupted)) {
            if (running) checkDigest(upload.digest, running);
            else if (upload.digest.expected !== undefined) {
              throw new TusError('DIGEST_MISMATCH', 'the digest of the bytes stored before this request is not known');
            }
          }
        },
        onProgress: progress.report,
        // Once the whole body is durable, the record that ends the PATCH follows at once.
        onDurable: early ? (bytes) => void (bytes < body.size! && progress.durable(bytes)) : undefined,
        size: body.size,
        signal: metered.signal,
      }),
    )
      .catch((error: unknown) => {
        // The log line of the failed request says how much of its body had arrived.
        if (error instanceof TusError) error.received ??= metered.received;
        throw error;
      })
      .finally(progress.settled);
    // `completed`: an earlier request completed the upload in storage and its answer was lost;
    // it is recorded as finished now, as that request would have.
    const completedBefore = 'completed' in written;
    const offset = completedBefore ? upload.length : written.offset;
    if (offset === undefined) throw new Error(`the store reported upload ${upload.id} complete, but its length is unknown`);
    // The digest state at the offset stored: a store may keep less than it read.
    return { offset, completedBefore, interrupted: metered.interrupted, received: metered.received, running: metered.runningAt(offset) };
  }

  /**
   * Records how far an append got: the new offset and expiry, the length it declared or (IETF) its
   * end fixed, and the finish when the last byte is in. Changes `upload` to match, and returns the
   * fields to save.
   */
  async #record(upload: Upload, written: Written, options: AppendOptions): Promise<RecordFields> {
    const changed: Partial<Upload> = { offset: written.offset, expiresAt: this.#now() + this.#o.ttlMs, transfer: undefined };
    if (options.length !== undefined) changed.length = options.length;
    if (upload.digest) changed.digest = savedDigest(upload.digest, written);
    // A body cut short did not reach the end its client meant, so it fixes no length.
    if (options.completes && upload.length === undefined && !written.interrupted) {
      changed.length = written.offset;
      await this.#storeLength({ ...upload, ...changed });
    }
    Object.assign(upload, changed);
    if (isFinished(upload)) {
      // The running state goes; the digest of the whole upload stays (for the hook and responses).
      if (upload.digest?.state !== undefined) {
        const { state, ...rest } = upload.digest;
        const running = restoreHash(rest.algorithm, state);
        upload.digest = changed.digest = running && running.hashed === upload.offset ? { ...rest, value: digestOf(running) } : rest;
      }
      await this.#finish(upload, options.request, written.completedBefore);
      changed.finishedAt = upload.finishedAt;
      changed.expiresAt = upload.expiresAt;
    }
    return changed;
  }

  /** Saves fields of a record, with the lease's release where it can (it is released anyway). */
  #save(id: string, fields: RecordFields, lease: Lease): Promise<void> {
    return this.#stateCall(() => (lease.save ? lease.release(fields) : this.#o.state.update(id, fields)));
  }

  /**
   * Where a finished upload's bytes can be fetched without this server (a presigned URL, when the
   * store offers one), or undefined. Only once the finish is done: one that failed is retried by `read`.
   */
  async downloadUrl(upload: Upload, headers: { 'Content-Type': string; 'Content-Disposition': string }): Promise<string | undefined> {
    const store = this.#o.store;
    if (!store.downloadUrl || !isFinished(upload) || upload.finishedAt === undefined) return undefined;
    return this.#storage(() => store.downloadUrl!(upload, headers));
  }

  /** The bytes of a finished upload; finishing is retried here if it failed the first time. */
  async read(id: string, range?: ByteRange): Promise<{ upload: Upload; body: ReadableStream<Uint8Array> | Blob }> {
    let upload = await this.get(id);
    if (!isFinished(upload)) throw new TusError('NOT_FINISHED');
    if (upload.finishedAt === undefined) {
      upload = await this.#withLock(id, async () => {
        const current = await this.#load(id, { locked: true });
        if (current.finishedAt === undefined) {
          await this.#finish(current);
          await this.#stateCall(() => this.#o.state.update(id, { finishedAt: current.finishedAt, expiresAt: undefined }));
        }
        return current;
      });
    }
    const body = await this.#storage(() => this.#o.store.read(upload, range));
    return { upload, body };
  }

  /**
   * Removes an upload. `owner` is checked as `append` checks it: by the lock's own script where the
   * locker reads records (another user's DELETE then neither touches the lock nor costs a read more).
   */
  terminate(id: string, { owner, request }: { owner: string | undefined; request?: HookRequest }): Promise<void> {
    return this.#withLock(
      id,
      async (_signal, lease) => {
        const upload = await this.#load(id, { lease, owner });
        await this.#hooks.decide('pre-terminate', upload, request);
        await (isSingle(upload) && this.#now() < this.#postUntil(upload) ? this.#tombstone(upload) : this.#remove(upload));
        this.#metrics.inc('tusflow_uploads_terminated_total');
        this.#hooks.emit('post-terminate', upload, request);
      },
      { read: true, owner },
    );
  }

  /** Removes unfinished uploads whose expiry has passed, and direct ones past MAX_SIZE; resolves with how many went. */
  async cleanup(): Promise<number> {
    return (await this.#removeOversized()) + (await this.#removeExpiredAll());
  }

  #removeExpiredAll(): Promise<number> {
    return removeExpired({
      state: this.#o.state,
      store: this.#o.store,
      ttlMs: this.#o.ttlMs,
      now: this.#now,
      // A busy upload is in use, not expired: its writer is not asked to stop (see cleanup.ts).
      withLock: (id, work) => this.#withLock(id, work, { ifFree: true }),
      remove: (upload) => this.#removeExpired(upload),
      releaseKey: (upload) => this.#releaseKey(upload),
      storage: this.#storage,
    });
  }

  /** Settles when the background hook deliveries started so far have (for Workers' waitUntil). */
  backgroundSettled(): Promise<void> {
    return this.#hooks.settled();
  }

  /**
   * Cuts in-flight writes (each commits what arrived) and waits for them and for background hook
   * deliveries, at most `timeoutMs`.
   */
  async shutdown(timeoutMs = 10_000): Promise<void> {
    this.#stopping = true;
    for (const controller of this.#active) controller.abort(new Error('server is shutting down'));
    await withTimeout(timeoutMs, () => Promise.allSettled([...this.#inflight, this.#hooks.settled()])).catch(() => {});
  }

  /**
   * Marks a PATCH as running and returns the callbacks that record how far it got: other instances
   * serve the progress view from these records. Bytes the store reports durable become the upload's
   * offset as soon as the record before has been written (at most one record per part), so a crash
   * mid-PATCH keeps them (the offset still only counts what storage holds). Progress alone is
   * recorded once per interval — or, where the lease saves records, with its renewals, at no cost of
   * its own (the lease marked the PATCH as running too). Nothing is recorded once the lock is lost.
   */
  async #progress(
    upload: Upload,
    signal: AbortSignal,
    lease: Lease,
  ): Promise<{ report(received: number): void; durable(bytes: number): void; settled(): Promise<void> }> {
    const transfer: Transfer = { startedAt: this.#now(), startOffset: upload.offset, received: 0, updatedAt: this.#now() };
    const save = lease.save?.bind(lease);
    if (!save) await this.#stateCall(() => this.#o.state.update(upload.id, { transfer }));
    const interval = this.#o.progressIntervalMs ?? 500;
    let writing: Promise<void> | undefined;
    let durable = 0;
    let committed = 0;
    let closed = false;
    const write = (changed: RecordFields, target: number): void => {
      writing = (save ? save(changed) : this.#o.state.update(upload.id, changed))
        // Progress is advisory, and a durable offset not recorded now is recorded when the PATCH ends.
        .then(() => void (committed = target))
        .then(
          () => {
            writing = undefined;
            if (durable > committed) record(); // what became durable while this record was written
          },
          () => void (writing = undefined),
        );
    };
    const record = (): void => {
      if (closed || signal.aborted) return;
      const now = this.#now();
      if (now - transfer.updatedAt >= interval && (save || !writing)) {
        transfer.updatedAt = now;
        this.#hooks.emit('post-receive', { ...upload, offset: upload.offset + transfer.received, transfer: { ...transfer } });
        // Progress alone goes with the lease's next renewal where it saves records, else in a record of its own.
        if (save) void save({ transfer: { ...transfer } }, { withRenewal: true }).catch(() => {});
        else if (durable <= committed) {
          write({ transfer: { ...transfer } }, committed);
          return;
        }
      }
      // Newly durable bytes are recorded at once, one record at a time.
      if (!writing && durable > committed) write({ transfer: { ...transfer }, offset: upload.offset + durable }, durable);
    };
    return {
      report: (received) => {
        transfer.received = Math.max(transfer.received, received);
        record();
      },
      durable: (bytes) => {
        durable = Math.max(durable, bytes);
        transfer.received = Math.max(transfer.received, bytes);
        record();
      },
      // The final record must not be overtaken by a late progress record.
      settled: async () => {
        closed = true;
        while (writing) await writing;
      },
    };
  }

  /** A record the state store lost, rebuilt from storage and stored again. */
  async #recover(id: string): Promise<Upload | undefined> {
    const store = this.#o.store;
    if (!store.recover) return undefined;
    const upload = await this.#storage(() => store.recover!(id));
    if (!upload) return undefined;
    // As `#finish` has it: a finished partial upload still expires, from when it finished.
    if (!isFinished(upload)) upload.expiresAt = this.#now() + this.#o.ttlMs;
    else if (upload.concat === 'partial') upload.expiresAt = (upload.finishedAt ?? this.#now()) + this.#o.ttlMs;
    await this.#stateCall(() => this.#o.state.put(upload));
    return upload;
  }

  /** The key goes last: until the object is gone, an upload given the key would lose its bytes to this removal. */
  async #remove(upload: Upload): Promise<void> {
    await this.#storage(() => this.#o.store.remove(upload));
    await this.#stateCall(() => this.#o.state.delete(upload.id));
    await this.#releaseKey(upload);
  }

  /**
   * Finished uploads stop expiring — except partial ones: they are a means to a final upload and go
   * with the cleanup like unfinished ones.
   */
  async #finish(upload: Upload, request?: HookRequest, alreadyInStorage = false): Promise<void> {
    await this.#hooks.decide('pre-finish', upload, request);
    if (!alreadyInStorage) await this.#storage(() => this.#o.store.finish(upload));
    upload.finishedAt = this.#now();
    if (upload.concat !== 'partial') delete upload.expiresAt;
  }

  // Direct uploads: the client sends the parts straight to storage with URLs signed here. The record
  // is an upload like any other; its offset is what storage lists, read when someone asks (HEAD,
  // progress), so that signing and sending parts cost no state-store write beyond the expiry.

  /**
   * The direct upload `id` whose object key is `key`, as its client names both: any other upload,
   * or a key that is not this upload's, is refused.
   */
  async direct(id: string, key: string, lease?: Lease): Promise<Upload> {
    const upload = await this.#load(id, { lease });
    if (!isDirect(upload)) throw new TusError('NOT_FOUND', 'not a direct upload');
    if (this.#direct().objectKey(upload) !== key) throw new TusError('FORBIDDEN', "the key is not this upload's");
    return upload;
  }

  /** The direct upload sent in parts `id`, as `direct` checks it: one sent in a form POST has no multipart upload. */
  async #multipart(id: string, key: string, lease?: Lease): Promise<Upload> {
    const upload = await this.direct(id, key, lease);
    if (isSingle(upload)) throw new TusError('NOT_FOUND', 'it is sent in one form POST, not in parts');
    return upload;
  }

  /** Whether the data store takes direct uploads. */
  get offersDirect(): boolean {
    return directUploadsOf(this.#o.store) !== undefined;
  }

  /** The object key of a direct upload, as its client names it. */
  directKey(upload: Upload): string {
    return this.#direct().objectKey(upload);
  }

  /**
   * URLs for the client to PUT these parts with, valid for `expires` seconds; the upload is in use,
   * so its expiry moves on (one state write for the lot).
   */
  async signParts(id: string, key: string, partNumbers: number[]): Promise<{ urls: Map<number, string>; expires: number }> {
    const upload = await this.#multipart(id, key);
    if (upload.finishedAt !== undefined) throw new TusError('UPLOAD_FINISHED');
    const maxPart = this.#maxPartNumber();
    const over = partNumbers.find((n) => n > maxPart);
    if (over !== undefined) throw new TusError('INVALID_DIRECT_REQUEST', `part ${over}: at most ${maxPart} parts fit in MAX_SIZE`);
    // Under the lock, and only while unfinished: a completion that ran meanwhile removed the expiry
    // for good, and one given back would answer 410 once it passed.
    if (upload.expiresAt === undefined || upload.expiresAt - this.#now() < this.#o.ttlMs - Math.min(EXPIRY_STEP_MS, this.#o.ttlMs / 2)) {
      await this.#withLock(
        id,
        async (_signal, lease) => {
          const current = await this.#multipart(id, key, lease);
          if (current.finishedAt !== undefined) throw new TusError('UPLOAD_FINISHED');
          await this.#stateCall(() => this.#o.state.update(id, { expiresAt: this.#now() + this.#o.ttlMs }));
        },
        { read: true },
      );
    }
    const direct = this.#direct();
    const urls = new Map<number, string>();
    for (const partNumber of partNumbers) urls.set(partNumber, await this.#storage(() => direct.signPart(upload, partNumber, PART_URL_SECONDS)));
    return { urls, expires: PART_URL_SECONDS };
  }

  /** The parts storage holds for an unfinished direct upload (every page of ListParts). */
  async directParts(id: string, key: string): Promise<DirectPart[]> {
    const upload = await this.#multipart(id, key);
    if (upload.finishedAt !== undefined) throw new TusError('UPLOAD_FINISHED');
    const parts = await this.#storage(() => this.#direct().listParts(upload));
    if (parts) return parts;
    throw (await this.#finishIfStored(upload)).finishedAt === undefined ? new TusError('NOT_FOUND', 'its multipart upload is gone') : new TusError('UPLOAD_FINISHED');
  }

  /**
   * Completes a direct upload with the parts its client names, each as storage lists it: the
   * length is their sum, checked against the size limit (over it, the upload is removed), then
   * finished as any upload is, pre-finish and post-finish hooks included. A repeated completion
   * whose answer was lost is answered with the finished upload.
   */
  completeDirect(id: string, key: string, parts: Pick<DirectPart, 'partNumber' | 'etag'>[], request?: HookRequest): Promise<Upload> {
    return this.#withLock(
      id,
      async (_signal, lease) => {
        const upload = await this.direct(id, key, lease);
        if (upload.finishedAt !== undefined) return upload;
        if (isSingle(upload)) throw new TusError('NOT_FOUND', 'it is sent in one form POST, not in parts');
        const direct = this.#direct();
        const found = await this.#storage(() => direct.listParts(upload));
        // Completed in S3 by a completion whose answer (or its record) was lost: finished now.
        if (!found) {
          const finished = await this.#finishStored(upload, request);
          if (finished.finishedAt !== undefined) return finished;
          throw new TusError('NOT_FOUND', 'its multipart upload is gone');
        }
        const listed = new Map(found.map((part) => [part.partNumber, part]));
        let length = 0;
        const named: DirectPart[] = [];
        for (const part of parts) {
          const stored = listed.get(part.partNumber);
          if (!stored || etagOf(stored.etag) !== etagOf(part.etag)) throw new TusError('INVALID_DIRECT_REQUEST', `part ${part.partNumber} is not stored with that ETag`);
          named.push(stored);
          length += stored.size;
        }
        if (this.#o.maxSize !== undefined && length > this.#o.maxSize) {
          await this.#remove(upload);
          throw new TusError('TOO_LARGE', `${length} bytes, the upload is removed`);
        }
        Object.assign(upload, { length, offset: length });
        await this.#hooks.decide('pre-finish', upload, request);
        await this.#storage(() => direct.complete(upload, named, length));
        upload.finishedAt = this.#now();
        delete upload.expiresAt;
        await this.#stateCall(() => this.#o.state.put(upload));
        this.#finished(upload, request);
        return upload;
      },
      { read: true },
    );
  }

  /**
   * A direct upload the client sends whole in one form POST (small files): created like any (hooks,
   * key, owner) and signed for exactly its key, its type and at most MAX_SIZE bytes, which S3 checks.
   * The server does not see the POST: the upload is finished when it is next looked at (HEAD,
   * progress, GET) or swept, once its object is there.
   */
  async createSingle(input: CreateInput & { type: string }): Promise<{ upload: Upload; url: string; fields: Record<string, string>; expires: number }> {
    const upload = await this.create({ ...input, direct: true, single: true });
    // Signed as of the upload's creation, so it expires exactly at its `postUntil`.
    const expiresSeconds = this.#postMs() / 1000;
    const post = await this.#storage(() =>
      this.#direct().signPost(upload, { type: input.type, maxSize: this.#o.maxSize, expiresSeconds, now: new Date(upload.createdAt) }),
    );
    return { upload, ...post, expires: Math.floor(expiresSeconds) };
  }

  /**
   * How long a form POST's policy lasts: POST_SECONDS, or half the upload's lifetime when that is
   * shorter, so that the record is still there to be finished when the policy has expired.
   */
  #postMs(): number {
    return Math.min(POST_SECONDS * 1000, this.#o.ttlMs / 2);
  }

  /** When a form POST upload's policy expires (S3 takes no POST for it after that). */
  #postUntil(upload: Upload): number {
    // A record rebuilt from its `.info` has no `postUntil`: its policy lasted as long as this server's give.
    return Number(upload.store?.postUntil) || upload.createdAt + this.#postMs();
  }

  /**
   * Removes a form POST upload whose policy has not expired yet: its object goes, but its record
   * stays (answered as not found) with its key until the policy expires, when the sweep removes
   * the object again, should one more POST have stored it, and only then gives the key back.
   */
  async #tombstone(upload: Upload): Promise<void> {
    await this.#storage(() => this.#o.store.remove(upload));
    const store = { ...upload.store, removed: '1' };
    await this.#stateCall(() => this.#o.state.put({ ...upload, store, expiresAt: this.#postUntil(upload) }));
  }

  /** The highest part number worth signing: more parts of the smallest size would pass MAX_SIZE. */
  #maxPartNumber(): number {
    const maxSize = this.#o.maxSize;
    return maxSize === undefined ? 10_000 : Math.min(10_000, Math.max(1, Math.ceil(maxSize / MIN_PART_BYTES)));
  }

  /**
   * A direct upload as it stands: finished, with its length, once its object is stored (the finish
   * hooks run then; a pre-finish refusal removes it), else as it was.
   */
  async #finishIfStored(upload: Upload): Promise<Upload> {
    if (isSingle(upload) && this.#now() < this.#postUntil(upload)) return upload;
    if ((await this.#storage(() => this.#direct().storedSize(upload))) === undefined) return upload;
    return this.#withLock(upload.id, async (_signal, lease) => this.#finishStored(await this.#load(upload.id, { lease })), { read: true });
  }

  /** Finishes a direct upload if its object is stored; the caller holds its lock. */
  async #finishStored(upload: Upload, request?: HookRequest): Promise<Upload> {
    if (upload.finishedAt !== undefined) return upload;
    // Another POST could still replace the bytes the finish hooks would approve.
    if (isSingle(upload) && this.#now() < this.#postUntil(upload)) return upload;
    const size = await this.#storage(() => this.#direct().storedSize(upload));
    if (size === undefined) return upload;
    Object.assign(upload, { length: size, offset: size });
    try {
      await this.#hooks.decide('pre-finish', upload, request);
    } catch (error) {
      // Refused: its bytes must not stay readable at its key.
      await this.#remove(upload);
      throw error;
    }
    upload.finishedAt = this.#now();
    delete upload.expiresAt;
    await this.#stateCall(() => this.#o.state.put(upload));
    this.#finished(upload, request);
    return upload;
  }

  /**
   * What the sweep does with an expired upload (holding its lock): removes it — but a direct upload
   * whose object is stored (a form POST, or a completion whose answer was lost) is finished instead.
   * Resolves with whether it went.
   */
  async #removeExpired(upload: Upload): Promise<boolean> {
    if (isDirect(upload) && upload.store?.removed !== '1') {
      try {
        if ((await this.#finishStored(upload)).finishedAt !== undefined) return false;
      } catch (error) {
        if (error instanceof TusError && error.code === 'REJECTED') return true; // refused at finish, and removed
        throw error;
      }
    }
    await this.#remove(upload);
    return true;
  }

  /**
   * The sweep's look at unfinished direct uploads sent in parts: one whose parts S3 holds already
   * pass MAX_SIZE (a part may have up to 5 GiB) is removed now, not at its completion or expiry.
   * One ListParts per such upload per sweep; resolves with how many went.
   */
  async #removeOversized(): Promise<number> {
    const maxSize = this.#o.maxSize;
    const store = this.#o.store;
    if (maxSize === undefined || !store.stale || !directUploadsOf(store)) return 0;
    let removed = 0;
    for await (const found of store.stale(Number.POSITIVE_INFINITY)) {
      const record = await this.#stateCall(() => this.#o.state.get(found.id));
      if (!record || !isDirect(record) || isSingle(record) || record.finishedAt !== undefined) continue;
      const parts = await this.#storage(() => this.#direct().listParts(record));
      if (!parts || parts.reduce((sum, part) => sum + part.size, 0) <= maxSize) continue;
      try {
        const gone = await this.#withLock(
          found.id,
          async (_signal, lease) => {
            const current = await this.#load(found.id, { lease });
            if (current.finishedAt !== undefined) return false;
            await this.#remove(current);
            return true;
          },
          { ifFree: true },
        );
        if (gone) removed++;
      } catch (error) {
        // Busy (being completed) or gone meanwhile: the next sweep looks again.
        if (!(error instanceof TusError)) throw error;
      }
    }
    return removed;
  }

  /**
   * The upload with the offset storage lists for it: the bytes of its parts. A listing is reused for
   * DIRECT_OFFSET_MS, so that progress polling (every 500 ms) and HEADs cost S3 one ListParts (or
   * more, for many parts) per upload that often at most.
   */
  async #withDirectOffset(upload: Upload): Promise<Upload> {
    const now = this.#now();
    const cached = this.#directOffsets.get(upload.id);
    if (cached && now - cached.at < DIRECT_OFFSET_MS) return { ...upload, offset: cached.offset };
    const parts = await this.#storage(() => this.#direct().listParts(upload));
    // No multipart upload any more: completed in S3 (finished now), or aborted (offset 0 until it expires).
    if (!parts) return this.#finishIfStored(upload);
    const offset = parts.reduce((sum, part) => sum + part.size, 0);
    // Bounded: entries older than the reuse window are dropped when it grows large.
    if (this.#directOffsets.size >= 10_000) for (const [id, entry] of this.#directOffsets) if (now - entry.at >= DIRECT_OFFSET_MS) this.#directOffsets.delete(id);
    if (this.#directOffsets.size < 10_000) this.#directOffsets.set(upload.id, { at: now, offset });
    return { ...upload, offset };
  }

  #direct(): DirectUploads {
    const direct = directUploadsOf(this.#o.store);
    if (!direct) throw new TusError('UNSUPPORTED_EXTENSION', 'direct uploads (the storage signs no URLs)');
    return direct;
  }

  /** Refuses what the data store cannot do (answered 400, as for a header the server does not take). */
  #require(capability: keyof Capabilities): void {
    if (!this.capabilities[capability]) throw new TusError('UNSUPPORTED_EXTENSION', REQUIRES[capability]);
  }

  #checkSize(length: number): void {
    if (this.#o.maxSize !== undefined && length > this.#o.maxSize) throw new TusError('TOO_LARGE');
  }

  async #withLock<T>(id: string, work: (signal: AbortSignal, lease: Lease) => Promise<T>, options?: LockOptions): Promise<T> {
    if (!isUploadId(id)) throw new TusError('NOT_FOUND');
    const waiting = performance.now();
    const lease = await this.#stateCall(() => this.#o.locker.acquire(id, options));
    this.#metrics.observe('tusflow_lock_wait_seconds', {}, (performance.now() - waiting) / 1000);
    const controller = new AbortController();
    const onLease = () => controller.abort(lease.signal.reason);
    lease.signal.addEventListener('abort', onLease, { once: true });
    if (lease.signal.aborted) onLease();
    if (this.#stopping) controller.abort(new Error('server is shutting down'));
    this.#active.add(controller);
    try {
      return await work(controller.signal, lease);
    } finally {
      this.#active.delete(controller);
      lease.signal.removeEventListener('abort', onLease);
      await lease.release().catch(() => {});
    }
  }

  /** Holds the locks of several uploads (taken in sorted order, so two callers cannot deadlock). */
  async #withLocks<T>(ids: string[], work: () => Promise<T>): Promise<T> {
    const [first, ...rest] = ids;
    if (first === undefined) return work();
    return this.#withLock(first, () => this.#withLocks(rest, work));
  }

  #track<T>(work: Promise<T>): Promise<T> {
    this.#inflight.add(work);
    const done = () => this.#inflight.delete(work);
    work.then(done, done);
    return work;
  }

  /** Backend failures become a 503 with a reason; protocol errors (from the body) pass through. */
  async #guard<T>(code: 'STORAGE_FAILED' | 'STATE_FAILED', call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof TusError) throw error;
      // The client gets the reason alone: a backend's error names hosts, addresses and buckets,
      // which only the log line (the cause) tells. "Try again" only where trying again can help:
      // not while the storage settings are wrong (a missing bucket, refused credentials).
      throw new TusError(code === 'STORAGE_FAILED' && isMisconfigured(error) ? 'STORAGE_REFUSED' : code, undefined, undefined, { cause: error });
    }
  }

  #storage = <T>(call: () => Promise<T>) => this.#guard('STORAGE_FAILED', call);
  #stateCall = <T>(call: () => Promise<T>) => this.#guard('STATE_FAILED', call);
}

/** Another user's upload is refused; one without an owner is anyone's who may use the server. */
function checkOwner(upload: Upload, owner: string | undefined): void {
  if (owner !== undefined && upload.owner !== undefined && upload.owner !== owner) throw new TusError('FORBIDDEN');
}

const isDirect = (upload: Upload): boolean => upload.store?.direct === '1';
/** A direct upload sent in one form POST: it has no multipart upload. */
const isSingle = (upload: Upload): boolean => upload.store?.uploadId === '';

/** An ETag as S3 compares it: without its quotes. */
const etagOf = (etag: string): string => etag.replace(/^(W\/)?"|"$/g, '');

/**
 * The upload's running digest, restored from its record: undefined when it has none, or when its
 * state is missing (a record rebuilt from storage) or does not end at the offset.
 */
function runningHash(upload: Upload): RunningHash | undefined {
  const digest = upload.digest;
  const running = digest?.state === undefined ? undefined : restoreHash(digest.algorithm, digest.state);
  return running && running.hashed === upload.offset ? running : undefined;
}

/**
 * The digest (base64) of what the upload holds so far: its final value once finished, else its
 * running state's when that covers exactly its offset; undefined when not known.
 */
export function currentDigest(upload: Upload): string | undefined {
  if (upload.digest?.value !== undefined) return upload.digest.value;
  const running = runningHash(upload);
  return running && digestOf(running);
}

/**
 * The digest an append's Repr-Digest asks for, merged with the upload's: the first bytes may still
 * bring it; later it must be the one the upload already has. A mere preference (Want-Repr-Digest,
 * nothing expected) never fails the request: past the first bytes, or for another algorithm than
 * the upload's, it gets the digest the upload has, if any.
 */
function digestFor(upload: Upload, request: DigestRequest): UploadDigest | undefined {
  const current = upload.digest;
  if (request.expected === undefined && (current ? current.algorithm !== request.algorithm : upload.offset > 0)) return current;
  if (!current) {
    if (upload.offset > 0) throw new TusError('INVALID_DIGEST', 'it must come with the creation or the first bytes of the upload');
    return { ...request, state: startHash(request.algorithm).save() };
  }
  if (current.algorithm !== request.algorithm) throw new TusError('INVALID_DIGEST', `the upload is hashed with ${current.algorithm}`);
  if (request.expected === undefined) return current;
  if (current.expected !== undefined && current.expected !== request.expected) throw new TusError('INVALID_DIGEST', 'it differs from the one sent before');
  return { ...current, expected: request.expected };
}

/** Throws DIGEST_MISMATCH unless the running hash of the whole upload is the one expected; else the digest, finished. */
function checkDigest(digest: UploadDigest, running: RunningHash): UploadDigest {
  const value = digestOf(running);
  if (digest.expected !== undefined && digest.expected !== value) throw new TusError('DIGEST_MISMATCH');
  const { state: _state, ...rest } = digest;
  return { ...rest, value };
}

/**
 * The digest to record with an append's new offset: the running state exactly at that offset; a
 * state that does not end there (storage showed the upload already complete) is dropped, never kept
 * beside an offset it does not cover.
 */
function savedDigest(digest: UploadDigest, written: Written): UploadDigest {
  const { state: _state, ...rest } = digest;
  return written.running && written.running.hashed === written.offset ? { ...rest, state: written.running.save() } : rest;
}

/** An append must start where the upload stands; the error tells the client where that is. */
function expectOffset(upload: Upload, offset: number): void {
  if (offset === upload.offset) return;
  const error = new TusError('OFFSET_MISMATCH', `expected ${upload.offset}, got ${offset}`);
  error.offset = upload.offset;
  throw error;
}

/** Reads a body that must be empty; a single byte means the client tried to pass the length. */
async function drainEmpty(stream: ReadableStream<Uint8Array>): Promise<void> {
  for await (const chunk of stream) {
    if (chunk.byteLength > 0) {
      await stream.cancel().catch(() => {});
      throw new TusError('EXCEEDS_LENGTH');
    }
  }
}
