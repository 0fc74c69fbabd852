/**
 * The upload page's script (bundled into page.generated.ts by `npm run build:web`): uploads files with
 * tus-js-client, shows each one's progress, pauses and resumes, resumes after a reload (tus-js-client
 * keeps upload URLs in localStorage, keyed by a fingerprint of the file), and shows what the server
 * has received through its Server-Sent Events progress stream. A refusal shows the server's own
 * reason; a lost connection is retried until the server is back.
 */
import { type DetailedError, type HttpResponse, Upload, defaultOptions } from 'tus-js-client';
import { authHeaders, authRequired, saveToken } from './auth.ts';
import { $, announce } from './dom.ts';
import { formatBytes, formatDuration, percent } from './format.ts';
import { RowView, type State } from './row-view.ts';
import { serverMaxSize } from './server-limits.ts';
import { ServerView, serverOffset } from './server-view.ts';
import { SpeedMeter } from './speed.ts';
import { DirectUpload } from './direct-upload.ts';

type PreviousUpload = Awaited<ReturnType<Upload['findPreviousUploads']>>[number];

const endpoint = new URL(document.querySelector<HTMLMetaElement>('meta[name="tus-endpoint"]')?.content ?? '/files/', location.href).href;
const storage = defaultOptions.urlStorage;
/** The server's direct-upload API when it offers one (S3_DIRECT): bytes then go straight to S3. */
const directApi = document.querySelector<HTMLMetaElement>('meta[name="tus-direct"]')?.content || undefined;
/** Browsers open at most 6 HTTP/1.1 connections per server: each running upload takes two (PATCH + events). */
const MAX_RUNNING = 2;
/**
 * While the server cannot be reached, tus-js-client tries again after each of these delays (ms):
 * soon at first, then every 5 s for about an hour. Progress starts the count again.
 */
const RETRY_DELAYS = [0, 1000, 2000, 4000, ...Array<number>(720).fill(5000)];
/** Answers that may pass (5xx, 409, 423) are retried this many times in a row, not for an hour. */
const MAX_SERVER_RETRIES = 5;
/** Client errors that another try cannot change; 401 and 403 can, once a token is given. */
const isPermanent = (status: number) => status >= 400 && status < 500 && ![401, 403, 408, 409, 423, 429].includes(status);
/** The largest upload the server takes, asked once on load: larger files are refused before any request. */
const maxSize = serverMaxSize(endpoint);

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

/** One file: its upload (tus, or direct to S3) and its state (queued, running, paused…), shown by its view. */
class Row {
  readonly upload: Upload | DirectUpload;
  state: State = 'queued';
  previous?: PreviousUpload;
  readonly #view: RowView;
  readonly #server: ServerView;
  readonly #speed = new SpeedMeter();
  #sent = 0;
  /** Retries in a row after answers that may pass (see MAX_SERVER_RETRIES). */
  #serverRetries = 0;
  #removed = false;

  constructor(readonly file: File) {
    this.#view = new RowView(file, {
      toggle: () => this.toggle(),
      startOver: () => this.startOver(),
      remove: () => this.remove(),
      // A plain link cannot carry the token: fetch the file and save it from memory instead.
      download: authRequired ? () => void saveWithToken(this.upload.url!, file.name) : undefined,
    });
    this.#server = new ServerView(this.#view.server, file.size);
    if (directApi) {
      this.upload = new DirectUpload(file, {
        api: new URL(directApi, location.href).href,
        endpoint,
        metadata: { filename: file.name, filetype: file.type || 'application/octet-stream' },
        headers: authHeaders,
        onUploadUrlAvailable: () => this.#watch(),
        onProgress: (sent, total) => this.#progress(sent, total),
        onSuccess: () => this.#finished(),
        onError: (error) => this.#failed(error),
      });
      return;
    }

    this.upload = new Upload(file, {
      endpoint,
      metadata: { filename: file.name, filetype: file.type || 'application/octet-stream' },
      removeFingerprintOnSuccess: true,
      retryDelays: RETRY_DELAYS,
      onShouldRetry: (error) => this.#shouldRetry(error),
      onAfterResponse: () => {
        if (this.state === 'reconnecting') this.#set('uploading', 'Reconnected: going on…');
      },
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
      // Where the server stands now, not what this browser last saw.
      const at = await serverOffset(previous.uploadUrl);
      if (at === 'gone' || at?.finished) await storage.removeUpload(previous.urlStorageKey);
      if (at === 'gone' || !at || at.finished) continue;
      this.previous = previous;
      claimed.add(previous.urlStorageKey);
      forgetEarlier(previous.urlStorageKey);
      this.#sent = at.offset;
      const shown = this.#view.bar(percent(at.offset, this.file.size));
      this.#set('choice', `An earlier upload stopped at ${formatBytes(at.offset)} (${shown}%)`);
      this.#server.showOffset(at);
      return true;
    }
    return false;
  }

  /** Refuses the file before anything is sent (it is larger than the server takes). */
  refuse(reason: string): void {
    this.#set('refused', `Refused: ${reason}`);
  }

  toggle(): void {
    if (this.state === 'queued' || this.state === 'uploading' || this.state === 'reconnecting') this.pause();
    else if (this.state !== 'finished' && this.state !== 'refused') this.resume();
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

  /**
   * Takes the row off the page; an unfinished upload is stopped and removed from the server
   * (`DELETE`) and from what tus-js-client keeps for resuming. A finished one stays on the server.
   */
  remove(): void {
    this.#removed = true;
    const index = queue.indexOf(this);
    if (index >= 0) queue.splice(index, 1);
    running.delete(this);
    this.#server.stop();
    const cancel = this.state !== 'finished' && this.state !== 'refused';
    if (cancel && this.upload.url) void this.upload.abort(true).catch(() => {});
    else void this.upload.abort();
    if (cancel && !this.upload.url && this.previous) {
      void storage.removeUpload(this.previous.urlStorageKey);
      if (this.previous.uploadUrl) Upload.terminate(this.previous.uploadUrl, { headers: authHeaders() }).catch(() => {});
    }
    rows.splice(rows.indexOf(this), 1);
    this.el.remove();
    $<HTMLElement>('#empty').hidden = rows.length > 0;
    announce(`${this.file.name}: ${cancel ? 'cancelled' : 'removed from the list'}`);
    pump();
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
    this.#serverRetries = 0;
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

  /**
   * Whether tus-js-client tries again. No answer at all: the server is unreachable (restarting, or
   * the network is down), so the row says so and waits for it; answers that may pass, a few times.
   */
  #shouldRetry(error: DetailedError): boolean {
    // Removed: its requests were aborted on purpose, and nothing of it is to go on.
    if (this.#removed) return false;
    const status = error.originalResponse?.getStatus();
    if (status === undefined) {
      if (this.state === 'uploading') this.#set('reconnecting', 'Reconnecting… the server cannot be reached');
      return true;
    }
    const passing = status === undefined || status >= 500 || status === 409 || status === 423;
    return passing && ++this.#serverRetries <= MAX_SERVER_RETRIES;
  }

  #failed(error: Error): void {
    running.delete(this);
    this.#server.stop();
    const response = (error as DetailedError).originalResponse;
    const status = response?.getStatus();
    // The server's own words (its refusals are short plain text), else what went wrong: a proxy's
    // error page (HTML) in between would show as markup, so only its status line is shown.
    const said = response && isPlainText(response) ? response.getBody()?.trim().slice(0, 300) : undefined;
    const reason =
      said ||
      (status !== undefined
        ? `the server answered ${[status, statusText(response)].filter(Boolean).join(' ')}`
        : (error as DetailedError).originalRequest
          ? 'the server cannot be reached'
          : error.message.replace(/^tus: /, '').split(', originated from')[0]);
    if (status !== undefined && isPermanent(status)) this.#set('refused', `Refused: ${reason}`);
    else this.#set('failed', `Failed: ${reason}`);
    if (status === 401 || status === 403) showAuth(true);
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

/** Whether an answer's body is plain text; an answer without headers (the direct-upload API's, already text) counts as such. */
function isPlainText(response: HttpResponse): boolean {
  if (typeof response.getHeader !== 'function') return true;
  return /^text\/plain\b/i.test(response.getHeader('Content-Type') ?? '');
}

/** The answer's reason phrase ("Bad Gateway"), where the browser has one (not over HTTP/2). */
function statusText(response: HttpResponse | null | undefined): string {
  const xhr: unknown = typeof response?.getUnderlyingObject === 'function' ? response.getUnderlyingObject() : undefined;
  return xhr instanceof XMLHttpRequest ? xhr.statusText : '';
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
  const limit = await maxSize;
  for (const file of files) {
    const row = new Row(file);
    rows.push(row);
    list.append(row.el);
    $<HTMLElement>('#empty').hidden = true;
    if (limit !== undefined && file.size > limit) row.refuse(`larger than the server accepts (${formatBytes(limit)} at most)`);
    else if (!(await row.findPrevious())) row.resume();
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
    const at = await serverOffset(previous.uploadUrl);
    if (run !== listing) return;
    if (at === 'gone' || at?.finished) await storage.removeUpload(previous.urlStorageKey);
    if (at === 'gone' || !at || at.finished || claimed.has(previous.urlStorageKey)) continue;
    const item = document.createElement('li');
    item.dataset.key = previous.urlStorageKey;
    const text = document.createElement('div');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = previous.metadata.filename ?? 'unnamed file';
    const status = document.createElement('span');
    status.className = 'status';
    const length = at.length ?? previous.size ?? 0;
    status.textContent = `${formatBytes(at.offset)} of ${formatBytes(length)} (${percent(at.offset, length)}%) on the server`;
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
