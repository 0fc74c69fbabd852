/** An error answer from S3, with its code (NoSuchKey, SlowDown, …) and HTTP status. */
export class S3Error extends Error {
  override name = 'S3Error';
  constructor(
    readonly operation: string,
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(`S3 ${operation} failed: ${status} ${code}${message ? ` (${message})` : ''}`);
  }

  get notFound(): boolean {
    return this.status === 404 || this.code === 'NoSuchKey' || this.code === 'NoSuchUpload';
  }

  /**
   * The server's storage settings are wrong (credentials, bucket, region), so every upload fails
   * alike until an operator fixes them; an error about one upload (NoSuchUpload, InvalidPart) is not.
   */
  get misconfigured(): boolean {
    return this.status === 403 || this.status === 301 || SETTINGS_CODES.has(this.code);
  }

  /** Worth another try: the service was busy or broke, not the request. */
  get transient(): boolean {
    // 501: the service does not implement what was asked, and will not next time either.
    return (this.status >= 500 && this.status !== 501) || this.status === 429 || ['SlowDown', 'RequestTimeout', 'InternalError'].includes(this.code);
  }
}

/** S3 codes that mean the credentials, the bucket or the region configured are wrong. */
const SETTINGS_CODES = new Set([
  'AccessDenied',
  'AllAccessDisabled',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'NoSuchBucket',
  'InvalidBucketName',
  'AuthorizationHeaderMalformed',
  'PermanentRedirect',
  'IllegalLocationConstraintException',
]);
