// What both Uppy test pages share (bundled for the browser with the page): Golden Retriever, a
// report of what Uppy did (`window.report`), and the calls the tests make (`window.addFiles`,
// `window.pause`, `window.resume`). A page creates Uppy, adds its uploader, then calls `watchUppy`.
import type Uppy from '@uppy/core';
import GoldenRetriever from '@uppy/golden-retriever';
import { fileBytes, type FileSpec } from '../proxy/uppy/bytes.ts';

export interface Report {
  /** Bytes sent per file name, as Uppy reports them. */
  progress: Record<string, number>;
  /** The upload URL per finished file name. */
  uploaded: Record<string, string>;
  /** SHA-256 of each file's bytes as the page holds them (generated, or restored after a reload). */
  hashes: Record<string, string>;
  restored: boolean;
  errors: string[];
  complete: boolean;
}

declare global {
  interface Window {
    report: Report;
    addFiles(files: FileSpec[]): Promise<void>;
    pause(name: string): void;
    resume(name: string): void;
  }
}

const hex = (buffer: ArrayBuffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');
const sha256 = async (data: Blob) => hex(await crypto.subtle.digest('SHA-256', await data.arrayBuffer()));

/**
 * Adds Golden Retriever and the report. `maxFileSize`: by default Golden Retriever keeps only files
 * up to 10 MiB in IndexedDB; its IndexedDB store reads these limits, but its option type names only
 * `name` and `version`, hence the widened type.
 */
export function watchUppy(uppy: Uppy, maxFileSize: number): void {
  const report: Report = { progress: {}, uploaded: {}, hashes: {}, restored: false, errors: [], complete: false };
  window.report = report;
  const indexedDB: { maxFileSize: number; maxTotalSize: number } = { maxFileSize, maxTotalSize: 2 * maxFileSize };
  uppy.use(GoldenRetriever, { indexedDB } as { indexedDB: object });

  const byName = (name: string) => uppy.getFiles().find((f) => f.name === name);
  window.pause = (name) => void uppy.pauseResume(byName(name)!.id);
  window.resume = (name) => void uppy.pauseResume(byName(name)!.id);

  uppy.on('upload-progress', (file, progress) => {
    if (file) report.progress[file.name ?? ''] = progress.bytesUploaded ?? 0;
  });
  uppy.on('upload-success', (file, response) => {
    if (file) report.uploaded[file.name ?? ''] = response.uploadURL ?? '';
  });
  uppy.on('upload-error', (file, error) => report.errors.push(`${file?.name}: ${error.message}`));
  uppy.on('error', (error) => report.errors.push(error.message));
  uppy.on('complete', (result) => {
    report.complete = (result.failed ?? []).length === 0 && (result.successful ?? []).length > 0;
  });
  uppy.on('restored', () => {
    void (async () => {
      for (const file of uppy.getFiles()) if (file.data instanceof Blob) report.hashes[file.name ?? ''] = await sha256(file.data);
      report.restored = true;
      // What Uppy's Dashboard does when the user confirms: go on with the restored uploads.
      uppy.emit('restore-confirmed');
    })().catch((error) => report.errors.push(String(error)));
  });

  window.addFiles = async (files) => {
    for (const spec of files) {
      const blob = new Blob([fileBytes(spec.seed, spec.size)], { type: 'application/octet-stream' });
      report.hashes[spec.name] = await sha256(blob);
      uppy.addFile({ name: spec.name, type: 'application/octet-stream', data: blob, source: 'test' });
    }
    void uppy.upload().catch((error) => report.errors.push(String(error)));
  };
}
