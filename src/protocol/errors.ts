/**
 * Every failure a client can see, with the status the tus spec names for it. The engine throws
 * codes; only the app turns them into responses, so a status lives in exactly one place.
 */
const table = {
  UNSUPPORTED_VERSION: [412, 'Tus-Resumable is missing or names a version this server does not speak'],
  INVALID_LENGTH: [400, 'Upload-Length must be a non-negative integer'],
  INVALID_DEFER_LENGTH: [400, 'Upload-Defer-Length must be 1'],
  LENGTH_REQUIRED: [400, 'exactly one of Upload-Length and Upload-Defer-Length is required'],
  LENGTH_ALREADY_SET: [400, 'Upload-Length is already set and cannot change'],
  INVALID_OFFSET: [400, 'Upload-Offset must be a non-negative integer'],
  INVALID_METADATA: [400, 'Upload-Metadata must be comma-separated "key base64value" pairs with unique keys'],
  INVALID_CHECKSUM: [400, 'Upload-Checksum must be "<algorithm> <base64 digest>"'],
  UNSUPPORTED_CHECKSUM: [400, 'the checksum algorithm is not supported'],
  INVALID_CONTENT_TYPE: [415, 'Content-Type must be application/offset+octet-stream'],
  INVALID_CONTENT_LENGTH: [400, 'Content-Length must be a non-negative integer'],
  UNSUPPORTED_INTEROP: [400, 'Upload-Draft-Interop-Version names a draft version this server does not serve'],
  INVALID_UPLOAD_COMPLETE: [400, 'Upload-Complete must be ?0 or ?1'],
  INVALID_IETF_HEADER: [400, 'this request must not carry Upload-Offset or Upload-Complete'],
  INVALID_CONCAT: [400, 'Upload-Concat must be "partial" or "final;" followed by upload URLs'],
  CONCAT_WITH_LENGTH: [400, 'a final upload takes no Upload-Length: its length is the sum of its partials'],
  NOT_PARTIAL: [400, 'only partial uploads (Upload-Concat: partial) can be concatenated'],
  FOREIGN_UPLOAD: [400, 'the URL is not an upload of this server'],
  FINAL_IS_READ_ONLY: [403, 'a final upload is assembled from its partials and takes no PATCH'],
  OFFSET_MISMATCH: [409, 'Upload-Offset does not match the upload\'s offset'],
  UPLOAD_FINISHED: [400, 'the upload is already complete'],
  INCONSISTENT_LENGTH: [400, 'the body does not end the upload where its length says'],
  TOO_LARGE: [413, 'the upload is larger than the server accepts'],
  EXCEEDS_LENGTH: [413, 'the body goes past Upload-Length'],
  CHECKSUM_MISMATCH: [460, 'the checksum does not match the body'],
  BODY_INTERRUPTED: [400, 'the body ended early, so its checksum cannot be verified'],
  NOT_FOUND: [404, 'no such upload'],
  GONE: [410, 'the upload has expired'],
  NOT_FINISHED: [404, 'the upload is not finished yet'],
  LOCKED: [423, 'another request is writing to this upload'],
  RANGE_NOT_SATISFIABLE: [416, 'the range is outside the file'],
  UNAUTHORIZED: [401, 'missing or invalid credentials'],
  MALFORMED_CREDENTIALS: [400, 'the Authorization header must be "Bearer <token>"'],
  FORBIDDEN: [403, 'this upload belongs to another user'],
  REJECTED: [403, 'refused by a hook'],
  TYPE_NOT_ALLOWED: [415, 'this kind of file is not accepted'],
  RATE_LIMITED: [429, 'too many requests; slow down'],
  INVALID_KEY: [500, 'a hook chose an object key that is not allowed'],
  KEY_TAKEN: [409, 'the object key is taken by another upload'],
  METHOD_NOT_ALLOWED: [405, 'method not allowed on this URL'],
  STORAGE_FAILED: [503, 'the storage backend failed; try again'],
  BUSY: [503, 'the server has no memory free for more uploads right now; try again shortly'],
  STATE_FAILED: [503, 'the state store failed; try again'],
} as const satisfies Record<string, readonly [number, string]>;

export type ErrorCode = keyof typeof table;

export class TusError extends Error {
  readonly status: number;
  /** The upload's current offset, where the error is about it (an offset mismatch). */
  offset?: number;
  /** `status` replaces the table's for a refusal whose status a hook chose. */
  constructor(readonly code: ErrorCode, detail?: string, status?: number) {
    const [defaultStatus, reason] = table[code];
    super(detail ? `${reason}: ${detail}` : reason);
    this.name = 'TusError';
    this.status = status ?? defaultStatus;
  }
}
