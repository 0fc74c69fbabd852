/**
 * The upload page's script (bundled into page.generated.ts by `npm run build:web`): uploads files with
 * tus-js-client, shows each one's progress, pauses and resumes, resumes after a reload (tus-js-client
 * keeps upload URLs in localStorage, keyed by a fingerprint of the file), and shows what the server
 * has received through its Server-Sent Events progress stream.
 */
import { Upload, defaultOptions } from 'tus-js-client';
import type { Progress } from '../model/progress.ts';

type PreviousUpload = Awaited<ReturnType<Upload['findPreviousUploads']>>[number];
type State = 'queued' | 'uploading' | 'paused' | 'choice' | 'finished' | 'failed';
type ServerProgress = Progress;

const endpoint = new URL(document.querySelector<HTMLMetaElement>('meta[name="tus-endpoint"]')?.content ?? '/files/', location.href).href;
/** The server wants a bearer token on tus requests (AUTH_TOKEN, JWT_SECRET or its own check). */
const authRequired = document.querySelector<HTMLMetaElement>('meta[name="tus-auth"]')?.content === 'bearer';
const TOKEN_KEY = 'tusflow-token';
/** Kept for the tab's life only (sessionStorage), never in the upload URLs tus-js-client stores. */
const authHeaders = (): Record<string, string> => {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
};
const storage = defaultOptions.urlStorage;
/** Browsers open at most 6 HTTP/1.1 connections per server: each running upload takes two (PATCH + events). */
const MAX_RUNNING = 2;
/** Speed is measured over this window. */
const SPEED_WINDOW_MS = 3000;

const $ = <T extends Element>(selector: string, root: ParentNode = document) => root.querySelector(selector) as T;
const input = $<HTMLInputElement>('#files');
const drop = $<HTMLElement>('#drop');
const list = $<HTMLUListElement>('#uploads');
const template = $<HTMLTemplateElement>('#upload-template');
const announce = (text: string) => ($<HTMLElement>('#announce').textContent = text);

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) [n, i] = [n / 1024, i + 1];
  return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

function formatDuration(seconds: number): string {
  const s = Math.ceil(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

const percent = (done: number, total: number) => (total > 0 ? Math.floor((done / total) * 100) : 100);

/** The server's view of an upload; 'gone' if it has none (expired or removed), undefined if it could not tell. */
async function serverProgress(uploadUrl: string | null): Promise<ServerProgress | 'gone' | undefined> {
  if (!uploadUrl) return 'gone';
  try {
    const res = await fetch(`${uploadUrl}/progress`, { cache: 'no-store', headers: authHeaders() });
    if (res.status === 404 || res.status === 410) return 'gone';
    return res.ok ? ((await res.json()) as ServerProgress) : undefined;
  } catch {
    return undefined;
  }
}

const rows: Row[] = [];
const queue: Row[] = [];
const running = new Set<Row>();
/** URL storage keys of earlier uploads that a row has taken over (so not listed as unfinished). */
const claimed = new Set<string>();

function pump(): void {
  while (running.size < MAX_RUNNING && queue.length > 0) queue.shift()!.run();
}

/** One file: its list item, its tus upload and the live view of its server-side progress. */
class Row {
  static #count = 0;
  readonly el: HTMLLIElement;
  readonly upload: Upload;
  state: State = 'queued';
  previous?: PreviousUpload;
  #bar: HTMLProgressElement;
  #status: HTMLElement;
  #server: HTMLElement;
  #toggle: HTMLButtonElement;
  #restart: HTMLButtonElement;
  #download: HTMLAnchorElement;
  #samples: Array<[time: number, bytes: number]> = [];
  #sent = 0;
  #unwatch?: () => void;

  constructor(readonly file: File) {
    this.el = (template.content.firstElementChild as HTMLLIElement).cloneNode(true) as HTMLLIElement;
    const nameId = `upload-${++Row.#count}`;
    $('.name', this.el).id = nameId;
    $('.name', this.el).textContent = file.name;
    $('.size', this.el).textContent = formatBytes(file.size);
    this.#bar = $('progress', this.el);
    this.#bar.setAttribute('aria-labelledby', nameId);
    this.#status = $('.status', this.el);
    this.#server = $('.server', this.el);
    this.#toggle = $('.toggle', this.el);
    this.#restart = $('.restart', this.el);
    this.#download = $('.download', this.el);
    for (const button of [this.#toggle, this.#restart]) button.setAttribute('aria-describedby', nameId);
    this.#toggle.addEventListener('click', () => this.toggle());
    this.#restart.addEventListener('click', () => this.startOver());
    // A plain link cannot carry the token: fetch the file and save it from memory instead.
    if (authRequired) {
      this.#download.addEventListener('click', (event) => {
        event.preventDefault();
        void saveWithToken(this.upload.url!, file.name);
      });
    }

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
      this.#bar.value = percent(progress.offset, this.file.size);
      this.#set('choice', `An earlier upload stopped at ${formatBytes(progress.offset)} (${this.#bar.value}%)`);
      this.#showServer(progress);
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
    this.#bar.value = percent(this.#sent, this.file.size);
    return `Paused at ${formatBytes(this.#sent)} of ${formatBytes(this.file.size)} (${this.#bar.value}%)`;
  }

  /** Drops the earlier upload of this file (on the server too) and uploads it anew. */
  startOver(): void {
    if (this.previous) {
      const { uploadUrl, urlStorageKey } = this.previous;
      void storage.removeUpload(urlStorageKey);
      if (uploadUrl) Upload.terminate(uploadUrl, { headers: authHeaders() }).catch(() => {});
      this.previous = undefined;
    }
    this.#sent = this.#bar.value = 0;
    this.resume();
  }

  /** Called by pump() when a connection is free. */
  run(): void {
    running.add(this);
    this.#samples = [];
    this.#set('uploading', 'Starting…');
    this.upload.start();
    if (this.upload.url) this.#watch();
  }

  #set(state: State, status: string): void {
    const changed = state !== this.state;
    this.state = state;
    this.el.dataset.state = state;
    this.#status.textContent = status;
    this.#toggle.textContent = state === 'failed' ? 'Retry' : state === 'paused' || state === 'choice' ? 'Resume' : 'Pause';
    this.#toggle.hidden = state === 'finished';
    this.#restart.hidden = state !== 'choice';
    if (changed && state !== 'uploading' && state !== 'queued') announce(`${this.file.name}: ${status}`);
  }

  #progress(sent: number, total: number): void {
    if (this.state !== 'uploading') return;
    const now = performance.now();
    this.#sent = sent;
    this.#samples.push([now, sent]);
    while (this.#samples.length > 2 && now - this.#samples[0]![0] > SPEED_WINDOW_MS) this.#samples.shift();
    const [t0, b0] = this.#samples[0]!;
    const speed = now > t0 ? ((sent - b0) / (now - t0)) * 1000 : 0;
    this.#bar.value = percent(sent, total);
    const parts = [`${formatBytes(sent)} of ${formatBytes(total)}`, `${this.#bar.value}%`];
    if (speed > 0 && now - t0 > 500) parts.push(`${formatBytes(speed)}/s`, `${formatDuration((total - sent) / speed)} left`);
    this.#status.textContent = parts.join(' · ');
  }

  #finished(): void {
    running.delete(this);
    this.#bar.value = 100;
    this.#set('finished', `Uploaded ${formatBytes(this.file.size)}`);
    this.#download.href = this.upload.url!;
    this.#download.download = this.file.name;
    this.#download.hidden = false;
    this.#download.setAttribute('aria-label', `Download ${this.file.name}`);
    pump();
  }

  #failed(error: Error): void {
    running.delete(this);
    this.#unwatch?.();
    this.#unwatch = undefined;
    const status = (error as { originalResponse?: { getStatus(): number } | null }).originalResponse?.getStatus();
    if (status === 401 || status === 403) {
      this.#set('failed', status === 401 ? 'Failed: the server wants an access token' : 'Failed: this token may not upload here');
      showAuth(true);
    } else this.#set('failed', `Failed: ${error.message.replace(/^tus: /, '').split(', originated from')[0]}`);
    pump();
  }

  /**
   * The server's own view of the upload, pushed by `GET <upload>/progress` as Server-Sent Events. It
   * comes from the shared state store, so it also moves when the bytes go to another instance.
   */
  #watch(): void {
    if (this.#unwatch || !this.upload.url) return;
    const unwatch = serverEvents(`${this.upload.url}/progress`, (event, data) => {
      if (event === 'gone') return close();
      if (event !== 'progress') return;
      const progress = JSON.parse(data) as ServerProgress;
      this.#showServer(progress);
      // The stream ends once the upload is finished (and would be opened again: stop), and is of no
      // more use once a pause has settled on the server.
      if (progress.state === 'paused' && this.state === 'paused') {
        this.#sent = progress.offset; // where a resume starts: what the server stored, not what left the browser
        this.#status.textContent = this.#pausedAt();
        close();
      }
      if (progress.state === 'finished') close();
    });
    const close = () => {
      unwatch();
      if (this.#unwatch === unwatch) this.#unwatch = undefined;
    };
    this.#unwatch = unwatch;
  }

  #showServer(p: ServerProgress): void {
    const length = p.length ?? this.file.size;
    const parts = [`Server: ${formatBytes(p.received)} of ${formatBytes(length)} received`, p.state];
    if (p.state === 'uploading' && p.bytesPerSecond > 0) parts.push(`${formatBytes(p.bytesPerSecond)}/s`);
    this.#server.textContent = parts.join(' · ');
    this.#server.dataset.state = p.state;
    this.#server.dataset.received = String(p.received);
  }
}

/**
 * Server-Sent Events read through fetch, which (unlike EventSource) can send the token; reopened a
 * second after it ends or fails, as EventSource does, until the returned function is called.
 */
function serverEvents(url: string, on: (event: string, data: string) => void): () => void {
  const stop = new AbortController();
  void (async () => {
    while (!stop.signal.aborted) {
      try {
        const res = await fetch(url, { cache: 'no-store', headers: { ...authHeaders(), Accept: 'text/event-stream' }, signal: stop.signal });
        if (res.status === 404 || res.status === 410) return on('gone', '');
        if (!res.ok) {
          await res.body?.cancel();
          // A refusal (no token, or the wrong one) does not pass by itself: stop, as EventSource does.
          if (res.status < 500) return;
        }
        const reader = res.ok ? res.body?.pipeThrough(new TextDecoderStream()).getReader() : undefined;
        let text = '';
        for (let read = await reader?.read(); read && !read.done; read = await reader!.read()) {
          text += read.value;
          for (let end = text.indexOf('\n\n'); end >= 0; end = text.indexOf('\n\n')) {
            const lines = text.slice(0, end).split('\n');
            text = text.slice(end + 2);
            const field = (name: string) => lines.filter((l) => l.startsWith(`${name}:`)).map((l) => l.slice(name.length + 1).trimStart());
            on(field('event')[0] ?? 'message', field('data').join('\n'));
          }
        }
      } catch {
        // reopened below, unless stopped
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  })();
  return () => stop.abort();
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
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
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
