/**
 * The upload page's script (bundled into page.generated.ts by `npm run build:web`): uploads files with
 * tus-js-client, shows each one's progress, pauses and resumes, resumes after a reload (tus-js-client
 * keeps upload URLs in localStorage, keyed by a fingerprint of the file), and shows what the server
 * has received through its Server-Sent Events progress stream.
 */
import { Upload, defaultOptions } from 'tus-js-client';
import { authHeaders, authRequired, saveToken } from './auth.ts';
import { $, announce } from './dom.ts';
import { formatBytes, formatDuration, percent } from './format.ts';
import { RowView, type State } from './row-view.ts';
import { ServerView, serverProgress } from './server-view.ts';
import { SpeedMeter } from './speed.ts';

type PreviousUpload = Awaited<ReturnType<Upload['findPreviousUploads']>>[number];

const endpoint = new URL(document.querySelector<HTMLMetaElement>('meta[name="tus-endpoint"]')?.content ?? '/files/', location.href).href;
const storage = defaultOptions.urlStorage;
/** Browsers open at most 6 HTTP/1.1 connections per server: each running upload takes two (PATCH + events). */
const MAX_RUNNING = 2;

const input = $<HTMLInputElement>('#files');
const drop = $<HTMLElement>('#drop');
const list = $<HTMLUListElement>('#uploads');

const rows: Row[] = [];
const queue: Row[] = [];
const running = new Set<Row>();
/** URL storage keys of earlier uploads that a row has taken over (so not listed as unfinished). */
const claimed = new Set<string>();

function pump(): void {
  while (running.size < MAX_RUNNING && queue.length > 0) queue.shift()!.run();
}

/** One file: its tus upload and its state (queued, running, paused…), shown by its view. */
class Row {
  readonly upload: Upload;
  state: State = 'queued';
  previous?: PreviousUpload;
  readonly #view: RowView;
  readonly #server: ServerView;
  readonly #speed = new SpeedMeter();
  #sent = 0;

  constructor(readonly file: File) {
    this.#view = new RowView(file, {
      toggle: () => this.toggle(),
      startOver: () => this.startOver(),
      // A plain link cannot carry the token: fetch the file and save it from memory instead.
      download: authRequired ? () => void saveWithToken(this.upload.url!, file.name) : undefined,
    });
    this.#server = new ServerView(this.#view.server, file.size);

    this.upload = new Upload(file, {
      endpoint,
      metadata: { filename: file.name, filetype: file.type || 'application/octet-stream' },
      removeFingerprintOnSuccess: true,
      retryDelays: [0, 1000, 3000, 5000, 10000],
      // Read at each request, so a token entered after a refusal is used by the retry.
      onBeforeRequest: (request) => {
        for (const [name, value] of Object.entries(authHeaders())) request.setHeader(name, value);
      },
      onUploadUrlAvailable: () => this.#watch(),
      onProgress: (sent, total) => this.#progress(sent, total),
      onSuccess: () => this.#finished(),
      onError: (error) => this.#failed(error),
    });
  }

  get el(): HTMLLIElement {
    return this.#view.el;
  }

  /** Looks for an earlier upload of the same file that the server still has; offers to resume it. */
  async findPrevious(): Promise<boolean> {
    const found = (await this.upload.findPreviousUploads()).sort((a, b) => Date.parse(b.creationTime) - Date.parse(a.creationTime));
    for (const previous of found) {
      const progress = await serverProgress(previous.uploadUrl);
      if (progress === 'gone' || progress?.state === 'finished') await storage.removeUpload(previous.urlStorageKey);
      if (progress === 'gone' || !progress || progress.state === 'finished') continue;
      this.previous = previous;
      claimed.add(previous.urlStorageKey);
      forgetEarlier(previous.urlStorageKey);
      this.#sent = progress.offset;
      const shown = this.#view.bar(percent(progress.offset, this.file.size));
      this.#set('choice', `An earlier upload stopped at ${formatBytes(progress.offset)} (${shown}%)`);
      this.#server.show(progress);
      return true;
    }
    return false;
  }

  toggle(): void {
    if (this.state === 'queued' || this.state === 'uploading') this.pause();
    else if (this.state !== 'finished') this.resume();
  }

  resume(): void {
    if (this.state === 'choice' && this.previous) this.upload.resumeFromPreviousUpload(this.previous);
    this.#set('queued', 'Waiting…');
    queue.push(this);
    pump();
  }

  pause(): void {
    const index = queue.indexOf(this);
    if (index >= 0) queue.splice(index, 1);
    if (running.delete(this)) void this.upload.abort();
    this.#set('paused', this.#pausedAt());
    pump();
  }

  /** Sets the bar to where the upload stopped and describes it. */
  #pausedAt(): string {
    const shown = this.#view.bar(percent(this.#sent, this.file.size));
    return `Paused at ${formatBytes(this.#sent)} of ${formatBytes(this.file.size)} (${shown}%)`;
  }

  /** Drops the earlier upload of this file (on the server too) and uploads it anew. */
  startOver(): void {
    if (this.previous) {
      const { uploadUrl, urlStorageKey } = this.previous;
      void storage.removeUpload(urlStorageKey);
      if (uploadUrl) Upload.terminate(uploadUrl, { headers: authHeaders() }).catch(() => {});
      this.previous = undefined;
    }
    this.#sent = 0;
    this.#view.bar(0);
    this.resume();
  }

  /** Called by pump() when a connection is free. */
  run(): void {
    running.add(this);
    this.#speed.reset();
    this.#set('uploading', 'Starting…');
    this.upload.start();
    if (this.upload.url) this.#watch();
  }

  #set(state: State, status: string): void {
    const changed = state !== this.state;
    this.state = state;
    this.#view.show(state, status);
    if (changed && state !== 'uploading' && state !== 'queued') announce(`${this.file.name}: ${status}`);
  }

  #progress(sent: number, total: number): void {
    if (this.state !== 'uploading') return;
    this.#sent = sent;
    const estimate = this.#speed.sample(performance.now(), sent, total);
    const parts = [`${formatBytes(sent)} of ${formatBytes(total)}`, `${this.#view.bar(percent(sent, total))}%`];
    if (estimate) parts.push(`${formatBytes(estimate.bytesPerSecond)}/s`, `${formatDuration(estimate.secondsLeft)} left`);
    this.#view.status(parts.join(' · '));
  }

  #finished(): void {
    running.delete(this);
    this.#view.bar(100);
    this.#set('finished', `Uploaded ${formatBytes(this.file.size)}`);
    this.#view.downloadable(this.upload.url!, this.file.name);
    pump();
  }

  #failed(error: Error): void {
    running.delete(this);
    this.#server.stop();
    const status = (error as { originalResponse?: { getStatus(): number } | null }).originalResponse?.getStatus();
    if (status === 401 || status === 403) {
      this.#set('failed', status === 401 ? 'Failed: the server wants an access token' : 'Failed: this token may not upload here');
      showAuth(true);
    } else this.#set('failed', `Failed: ${error.message.replace(/^tus: /, '').split(', originated from')[0]}`);
    pump();
  }

  /** Keeps the server's view live while it tells something the page does not already know. */
  #watch(): void {
    if (!this.upload.url) return;
    this.#server.watch(this.upload.url, (progress) => {
      // The stream ends once the upload is finished (and would be opened again: stop), and is of no
      // more use once a pause has settled on the server.
      if (progress.state === 'paused' && this.state === 'paused') {
        this.#sent = progress.offset; // where a resume starts: what the server stored, not what left the browser
        this.#view.status(this.#pausedAt());
        return false;
      }
      return progress.state !== 'finished';
    });
  }
}

/** Downloads a finished upload with the token, then saves it under its name. */
async function saveWithToken(url: string, name: string): Promise<void> {
  const res = await fetch(url, { headers: authHeaders() });
  if (!res.ok) return void announce(`${name}: the download failed (${res.status})`);
  const link = document.createElement('a');
  link.href = URL.createObjectURL(await res.blob());
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

const authForm = $<HTMLFormElement>('#auth');
const tokenInput = $<HTMLInputElement>('#token');
function showAuth(focus = false): void {
  authForm.hidden = false;
  if (focus) tokenInput.focus();
}
authForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const token = tokenInput.value.trim();
  saveToken(token);
  tokenInput.value = '';
  $<HTMLElement>('#auth-status').textContent = token ? 'Token set for this tab.' : 'Token cleared.';
  // What failed for want of a token goes on now, and the unfinished uploads can be listed.
  for (const row of rows) if (row.state === 'failed') row.resume();
  if (authRequired) showAuth();
  void listEarlier();
});

async function addFiles(files: Iterable<File>): Promise<void> {
  for (const file of files) {
    const row = new Row(file);
    rows.push(row);
    list.append(row.el);
    $<HTMLElement>('#empty').hidden = true;
    if (!(await row.findPrevious())) row.resume();
  }
}

/** Uploads this browser started earlier and did not finish, listed on load with the server's offset. */
let listing = 0;
async function listEarlier(): Promise<void> {
  const section = $<HTMLElement>('#earlier');
  const earlier = $<HTMLUListElement>('#earlier-list');
  const run = ++listing; // a newer listing (after a token is given) replaces this one
  earlier.replaceChildren();
  for (const previous of await storage.findAllUploads()) {
    const progress = await serverProgress(previous.uploadUrl);
    if (run !== listing) return;
    if (progress === 'gone' || progress?.state === 'finished') await storage.removeUpload(previous.urlStorageKey);
    if (progress === 'gone' || !progress || progress.state === 'finished' || claimed.has(previous.urlStorageKey)) continue;
    const item = document.createElement('li');
    item.dataset.key = previous.urlStorageKey;
    const text = document.createElement('div');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = previous.metadata.filename ?? 'unnamed file';
    const status = document.createElement('span');
    status.className = 'status';
    const length = progress.length ?? previous.size ?? 0;
    status.textContent = `${formatBytes(progress.offset)} of ${formatBytes(length)} (${percent(progress.offset, length)}%) on the server`;
    text.append(name, status);
    const forget = document.createElement('button');
    forget.type = 'button';
    forget.className = 'button';
    forget.textContent = 'Discard';
    forget.setAttribute('aria-label', `Discard ${name.textContent}`);
    forget.addEventListener('click', () => {
      forgetEarlier(previous.urlStorageKey);
      void storage.removeUpload(previous.urlStorageKey);
      Upload.terminate(previous.uploadUrl!, { headers: authHeaders() }).catch(() => {});
    });
    item.append(text, forget);
    earlier.append(item);
    section.hidden = false;
  }
}

function forgetEarlier(key: string): void {
  document.querySelector(`#earlier-list li[data-key="${CSS.escape(key)}"]`)?.remove();
  const section = $<HTMLElement>('#earlier');
  section.hidden = !section.querySelector('li');
}

input.addEventListener('change', () => {
  void addFiles([...(input.files ?? [])]);
  input.value = '';
});
drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  void addFiles([...(event.dataTransfer?.files ?? [])]);
});
if (authRequired) showAuth();
void listEarlier();
