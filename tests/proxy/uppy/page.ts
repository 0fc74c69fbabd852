// The test page: Uppy with its tus uploader (credentials on) and Golden Retriever, no UI. The test
// calls `window.addFiles`, reads `window.report`, reloads the page mid-upload and lets Golden
// Retriever restore and resume.
import Uppy from '@uppy/core';
import Tus from '@uppy/tus';
import { watchUppy } from '../../support/uppy-page.ts';

const endpoint = new URLSearchParams(location.search).get('endpoint') ?? '';
const uppy = new Uppy({ id: 'proxy-test', autoProceed: false });
uppy.use(Tus, { endpoint, withCredentials: true, retryDelays: [0, 500, 1000, 2000] });
watchUppy(uppy, 64 * 1024 * 1024);
