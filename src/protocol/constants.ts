export const TUS_VERSION = '1.0.0';
export const OFFSET_CONTENT_TYPE = 'application/offset+octet-stream';

/** Headers a browser must be allowed to send and to read (CORS). */
export const REQUEST_HEADERS = [
  'Authorization',
  'Content-Type',
  'Tus-Resumable',
  'Upload-Length',
  'Upload-Defer-Length',
  'Upload-Offset',
  'Upload-Metadata',
  'Upload-Checksum',
  'Upload-Concat',
  'X-HTTP-Method-Override',
  'X-Requested-With',
  'Upload-Complete',
  'Upload-Draft-Interop-Version',
  'Content-Disposition',
];
export const EXPOSED_HEADERS = [
  'Location',
  'Upload-Offset',
  'Upload-Length',
  'Upload-Defer-Length',
  'Upload-Expires',
  'Upload-Metadata',
  'Upload-Concat',
  'Tus-Resumable',
  'Tus-Version',
  'Tus-Extension',
  'Tus-Max-Size',
  'Tus-Checksum-Algorithm',
  'Content-Range',
  'Content-Disposition',
  'Upload-Complete',
  'Upload-Limit',
  'Upload-Draft-Interop-Version',
  // When to retry after a 429 or 503, and the id to quote when reporting a failed request.
  'Retry-After',
  'X-Request-Id',
];
export const METHODS = ['POST', 'HEAD', 'PATCH', 'DELETE', 'OPTIONS', 'GET'];
