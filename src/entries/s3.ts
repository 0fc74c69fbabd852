/** `tusflow/s3`: bytes in S3 multipart uploads (AWS, R2, MinIO, Ceph). Runs on every runtime, Workers included. */
export { S3DataStore, type S3StoreOptions } from '../storage/s3/store.ts';
export { S3Client, type S3ClientConfig, type Fetch } from '../storage/s3/client.ts';
export { S3Error } from '../storage/s3/errors.ts';
