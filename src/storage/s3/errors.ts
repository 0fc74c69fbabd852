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

  /** Worth another try: the service was busy or broke, not the request. */
  get transient(): boolean {
    // 501: the service does not implement what was asked, and will not next time either.
    return (this.status >= 500 && this.status !== 501) || this.status === 429 || ['SlowDown', 'RequestTimeout', 'InternalError'].includes(this.code);
  }
}
