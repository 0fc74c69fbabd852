// @tus/server + @tus/s3-store on Node, configured as the benchmark's peer (loopback only).
import http from 'node:http';
import { Server } from '@tus/server';
import { S3Store } from '@tus/s3-store';

const env = process.env;
const datastore = new S3Store({
  partSize: Number(env.S3_PART_SIZE),
  s3ClientConfig: {
    bucket: env.S3_BUCKET,
    region: 'us-east-1',
    endpoint: env.S3_ENDPOINT,
    forcePathStyle: true,
    credentials: { accessKeyId: env.S3_ACCESS_KEY_ID, secretAccessKey: env.S3_SECRET_ACCESS_KEY },
    // radosgw answers the SDK's default aws-chunked bodies with 500.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  },
});
const server = new Server({ path: '/files', datastore });
http
  .createServer((req, res) => server.handle(req, res))
  .listen(Number(env.PORT), '127.0.0.1', () => {
    console.log(`peer listening on http://127.0.0.1:${env.PORT}/files/`);
  });
