import type { ErrorCode, TusError } from '../model/errors.ts';

/** The status the tus spec (or HTTP) names for each failure: the one place a status lives. */
const statuses = {
  UNSUPPORTED_VERSION: 412,
  INVALID_LENGTH: 400,
  INVALID_DEFER_LENGTH: 400,
  LENGTH_REQUIRED: 400,
  LENGTH_ALREADY_SET: 400,
  INVALID_OFFSET: 400,
  INVALID_METADATA: 400,
  INVALID_CHECKSUM: 400,
  UNSUPPORTED_CHECKSUM: 400,
  INVALID_CONTENT_TYPE: 415,
  INVALID_CONTENT_LENGTH: 400,
  UNSUPPORTED_INTEROP: 400,
  INVALID_UPLOAD_COMPLETE: 400,
  INVALID_IETF_HEADER: 400,
  INVALID_CONCAT: 400,
  CONCAT_WITH_LENGTH: 400,
  NOT_PARTIAL: 400,
  FOREIGN_UPLOAD: 400,
  FINAL_IS_READ_ONLY: 403,
  DIRECT_UPLOAD: 403,
  INVALID_DIRECT_REQUEST: 400,
  OFFSET_MISMATCH: 409,
  UPLOAD_FINISHED: 400,
  INCONSISTENT_LENGTH: 400,
  TOO_LARGE: 413,
  EXCEEDS_LENGTH: 413,
  CHECKSUM_MISMATCH: 460,
  INVALID_DIGEST: 400,
  DIGEST_MISMATCH: 400,
  BODY_INTERRUPTED: 400,
  NOT_FOUND: 404,
  GONE: 410,
  NOT_FINISHED: 404,
  LOCKED: 423,
  RANGE_NOT_SATISFIABLE: 416,
  UNAUTHORIZED: 401,
  MALFORMED_CREDENTIALS: 400,
  FORBIDDEN: 403,
  REJECTED: 403,
  TYPE_NOT_ALLOWED: 415,
  RATE_LIMITED: 429,
  INVALID_KEY: 500,
  KEY_TAKEN: 409,
  METHOD_NOT_ALLOWED: 405,
  // As tusd answers an Upload-Concat it does not serve, and as the spec has it for an
  // Upload-Defer-Length it cannot take.
  UNSUPPORTED_EXTENSION: 400,
  STORAGE_FAILED: 503,
  // The server's fault, not the request's: a 5xx, but no retry helps (its reason says so).
  STORAGE_REFUSED: 503,
  BUSY: 503,
  STATE_FAILED: 503,
} as const satisfies Record<ErrorCode, number>;

/** The status a failure is answered with. */
export function statusOf(error: TusError): number {
  return error.status ?? statuses[error.code];
}
