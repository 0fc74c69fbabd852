/**
 * The upload page's script (bundled into page.generated.ts by `npm run build:web`): uploads files with
 * tus-js-client, shows each one's progress, pauses and resumes, resumes after a reload (tus-js-client
 * keeps upload URLs in localStorage, keyed by a fingerprint of the file), and shows what the server
 * has received through its Server-Sent Events progress stream.
 */
import { Upload, defaultOptions } from 'tus-js-client';
import type { Progress } from '../handlers/progress.ts';

type PreviousUpload = Awaited<ReturnType<Upload['findPreviousUploads']>>[number];
type State = 'queued' | 'uploading' | 'paused' | 'choice' | 'finished' | 'failed';
type ServerProgress = Progress;

const endpoint = new URL(document.querySelector<HTMLMetaElement>('meta[name="tus-endpoint"]')?.content ?? '/files/', location.href).href;
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
    const res = await fetch(`${uploadUrl}/progress`, { cache: 'no-store' });
    if (res.status === 404 || res.status === 410) return 'gone';
    return res.ok ? ((await res.json()) as ServerProgress) : undefined;
  } catch {
    return undefined;
  }
}

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
  #live?: EventSource;

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

    this.upload = new Upload(file, {
      endpoint,
      metadata: { filename: file.name, filetype: file.type || 'application/octet-stream' },
      removeFingerprintOnSuccess: true,
      retryDelays: [0, 1000, 3000, 5000, 10000],
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
      if (uploadUrl) Upload.terminate(uploadUrl).catch(() => {});
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
    this.#set('failed', `Failed: ${error.message.replace(/^tus: /, '').split(', originated from')[0]}`);
    pump();
  }

  /**
   * The server's own view of the upload, pushed by `GET <upload>/progress` as Server-Sent Events. It
   * comes from the shared state store, so it also moves when the bytes go to another instance.
   */
  #watch(): void {
    if (this.#live || !this.upload.url) return;
    const live = new EventSource(`${this.upload.url}/progress`);
    this.#live = live;
    const close = () => {
      live.close();
      if (this.#live === live) this.#live = undefined;
    };
    live.addEventListener('progress', (event) => {
      const progress = JSON.parse((event as MessageEvent<string>).data) as ServerProgress;
      this.#showServer(progress);
      // The stream ends once the upload is finished (EventSource would reconnect: close it), and is
      // of no more use once a pause has settled on the server.
      if (progress.state === 'paused' && this.state === 'paused') {
        this.#sent = progress.offset; // where a resume starts: what the server stored, not what left the browser
        this.#status.textContent = this.#pausedAt();
        close();
      }
      if (progress.state === 'finished') close();
    });
    live.addEventListener('gone', close);
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

async function addFiles(files: Iterable<File>): Promise<void> {
  for (const file of files) {
    const row = new Row(file);
    list.append(row.el);
    $<HTMLElement>('#empty').hidden = true;
    if (!(await row.findPrevious())) row.resume();
  }
}

/** Uploads this browser started earlier and did not finish, listed on load with the server's offset. */
async function listEarlier(): Promise<void> {
  const section = $<HTMLElement>('#earlier');
  const earlier = $<HTMLUListElement>('#earlier-list');
  for (const previous of await storage.findAllUploads()) {
    const progress = await serverProgress(previous.uploadUrl);
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
      Upload.terminate(previous.uploadUrl!).catch(() => {});
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
void listEarlier();
