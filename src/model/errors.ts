/**
 * Every failure a client can see, by code, with its reason in plain words. Any layer throws these;
 * only the HTTP side turns them into responses, with the status `protocol/errors.ts` names for each.
 */
const reasons = {
  UNSUPPORTED_VERSION: 'Tus-Resumable is missing or names a version this server does not speak',
  INVALID_LENGTH: 'Upload-Length must be a non-negative integer',
  INVALID_DEFER_LENGTH: 'Upload-Defer-Length must be 1',
  LENGTH_REQUIRED: 'exactly one of Upload-Length and Upload-Defer-Length is required',
  LENGTH_ALREADY_SET: 'Upload-Length is already set and cannot change',
  INVALID_OFFSET: 'Upload-Offset must be a non-negative integer',
  INVALID_METADATA: 'Upload-Metadata must be comma-separated "key base64value" pairs with unique keys',
  INVALID_CHECKSUM: 'Upload-Checksum must be "<algorithm> <base64 digest>"',
  UNSUPPORTED_CHECKSUM: 'the checksum algorithm is not supported',
  INVALID_CONTENT_TYPE: 'Content-Type must be application/offset+octet-stream',
  INVALID_CONTENT_LENGTH: 'Content-Length must be a non-negative integer',
  UNSUPPORTED_INTEROP: 'Upload-Draft-Interop-Version names a draft version this server does not serve',
  INVALID_UPLOAD_COMPLETE: 'Upload-Complete must be ?0 or ?1',
  INVALID_IETF_HEADER: 'this request must not carry Upload-Offset or Upload-Complete',
  INVALID_CONCAT: 'Upload-Concat must be "partial" or "final;" followed by upload URLs',
  CONCAT_WITH_LENGTH: 'a final upload takes no Upload-Length: its length is the sum of its partials',
  NOT_PARTIAL: 'only partial uploads (Upload-Concat: partial) can be concatenated',
  FOREIGN_UPLOAD: 'the URL is not an upload of this server',
  FINAL_IS_READ_ONLY: 'a final upload is assembled from its partials and takes no PATCH',
  DIRECT_UPLOAD: 'this upload goes straight to S3: its client sends the parts there, not here',
  INVALID_DIRECT_REQUEST: 'the request to the direct-upload API is malformed',
  OFFSET_MISMATCH: "Upload-Offset does not match the upload's offset",
  UPLOAD_FINISHED: 'the upload is already complete',
  INCONSISTENT_LENGTH: 'the body does not end the upload where its length says',
  TOO_LARGE: 'the upload is larger than the server accepts',
  EXCEEDS_LENGTH: 'the body goes past Upload-Length',
  CHECKSUM_MISMATCH: 'the checksum does not match the body',
  INVALID_DIGEST: 'Repr-Digest must be a dictionary of algorithm=:base64 digest: members',
  DIGEST_MISMATCH: 'the upload does not match its Repr-Digest, so it is not complete',
  BODY_INTERRUPTED: 'the body ended early, so its checksum cannot be verified',
  NOT_FOUND: 'no such upload',
  GONE: 'the upload has expired',
  NOT_FINISHED: 'the upload is not finished yet',
  LOCKED: 'another request is writing to this upload',
  RANGE_NOT_SATISFIABLE: 'the range is outside the file',
  UNAUTHORIZED: 'missing or invalid credentials',
  MALFORMED_CREDENTIALS: 'the Authorization header must be "Bearer <token>"',
  FORBIDDEN: 'this upload belongs to another user',
  REJECTED: 'refused by a hook',
  TYPE_NOT_ALLOWED: 'this kind of file is not accepted',
  RATE_LIMITED: 'too many requests; slow down',
  INVALID_KEY: 'a hook chose an object key that is not allowed',
  KEY_TAKEN: 'the object key is taken by another upload',
  METHOD_NOT_ALLOWED: 'method not allowed on this URL',
  UNSUPPORTED_EXTENSION: 'this server does not offer this, as its storage cannot do it',
  STORAGE_FAILED: 'the storage backend failed; try again',
  STORAGE_REFUSED: "the storage backend failed, and will until the server's storage settings are fixed",
  BUSY: 'the server has no memory free for more uploads right now; try again shortly',
  STATE_FAILED: 'the state store failed; try again',
} as const satisfies Record<string, string>;

export type ErrorCode = keyof typeof reasons;

export class TusError extends Error {
  /** The upload's current offset, where the error is about it (an offset mismatch). */
  offset?: number;
  /** Bytes of the request's body that had arrived when it failed (for the log line of a failed PATCH). */
  received?: number;
  /**
   * `status` replaces the usual one for a refusal whose status a hook chose. `detail` reaches the
   * client; `options.cause`, a backend's own error, only the server's log line.
   */
  constructor(
    readonly code: ErrorCode,
    detail?: string,
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(detail ? `${reasons[code]}: ${detail}` : reasons[code], options);
    this.name = 'TusError';
  }
}

/**
 * A backend error that blames the server's settings (an S3 answer such as NoSuchBucket or
 * AccessDenied has `misconfigured: true`); one about a single upload or that says nothing may pass.
 */
export function isMisconfigured(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'misconfigured' in error && error.misconfigured === true;
}
