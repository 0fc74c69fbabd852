// The test page for direct uploads: Uppy with its AwsS3 plugin pointed at Tusflow as if it were
// Companion (`companionEndpoint`), and Golden Retriever, no UI. The test calls `window.addFiles`,
// pauses and resumes, reads `window.report`, reloads the page mid-upload and lets Golden Retriever
// restore and resume.
import AwsS3 from '@uppy/aws-s3';
import Uppy from '@uppy/core';
import { watchUppy } from '../../support/uppy-page.ts';

const MiB = 1024 * 1024;
const server = new URLSearchParams(location.search).get('server') ?? '';
const uppy = new Uppy({ id: 'direct-test', autoProceed: false });
// Files over 5 MiB as multipart uploads, smaller ones in one form POST (`/s3/params`).
uppy.use(AwsS3, { companionEndpoint: server, shouldUseMultipart: (file) => (file.size ?? 0) > 5 * MiB, limit: 3 });
watchUppy(uppy, 128 * MiB);
