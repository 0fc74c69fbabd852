/** A file's list item on the page: its name and size, the bar, the status line and the buttons. */
import { $ } from './dom.ts';
import { formatBytes } from './format.ts';

/**
 * `reconnecting`: the server cannot be reached and the upload goes on by itself once it can;
 * `failed`: it stopped, and may go on when retried; `refused`: the server will not take it (too
 * large, a type it does not accept…), so there is nothing to retry.
 */
export type State = 'queued' | 'uploading' | 'reconnecting' | 'paused' | 'choice' | 'finished' | 'failed' | 'refused';

/** What the buttons of a row do. */
export interface RowActions {
  toggle(): void;
  startOver(): void;
  /** Takes the file off the list (and an unfinished upload off the server). */
  remove(): void;
  /** Replaces the download link's own navigation, when there is one. */
  download?: (() => void) | undefined;
}

const template = $<HTMLTemplateElement>('#upload-template');

export class RowView {
  static #count = 0;
  readonly el: HTMLLIElement;
  /** The line for the server's view (see ServerView). */
  readonly server: HTMLElement;
  readonly #bar: HTMLProgressElement;
  readonly #status: HTMLElement;
  readonly #toggle: HTMLButtonElement;
  readonly #restart: HTMLButtonElement;
  readonly #remove: HTMLButtonElement;
  readonly #download: HTMLAnchorElement;

  constructor(file: File, actions: RowActions) {
    this.el = (template.content.firstElementChild as HTMLLIElement).cloneNode(true) as HTMLLIElement;
    const nameId = `upload-${++RowView.#count}`;
    $('.name', this.el).id = nameId;
    $('.name', this.el).textContent = file.name;
    $('.size', this.el).textContent = formatBytes(file.size);
    this.#bar = $('progress', this.el);
    this.#bar.setAttribute('aria-labelledby', nameId);
    this.#status = $('.status', this.el);
    this.server = $('.server', this.el);
    this.#toggle = $('.toggle', this.el);
    this.#restart = $('.restart', this.el);
    this.#remove = $('.remove', this.el);
    this.#download = $('.download', this.el);
    for (const button of [this.#toggle, this.#restart, this.#remove]) button.setAttribute('aria-describedby', nameId);
    this.#toggle.addEventListener('click', () => actions.toggle());
    this.#restart.addEventListener('click', () => actions.startOver());
    this.#remove.addEventListener('click', () => actions.remove());
    const download = actions.download;
    if (download) {
      this.#download.addEventListener('click', (event) => {
        event.preventDefault();
        download();
      });
    }
  }

  /** Sets the bar to a percentage; answers the value it shows. */
  bar(value: number): number {
    this.#bar.value = value;
    return this.#bar.value;
  }

  status(text: string): void {
    this.#status.textContent = text;
  }

  /** Shows a state: the status line, and the buttons that state has, with their labels. */
  show(state: State, status: string): void {
    this.el.dataset.state = state;
    this.#status.textContent = status;
    this.#toggle.textContent = state === 'failed' ? 'Retry' : state === 'paused' || state === 'choice' ? 'Resume' : 'Pause';
    this.#toggle.hidden = state === 'finished' || state === 'refused';
    this.#restart.hidden = state !== 'choice';
    // The server has nothing of a refused file to show.
    this.server.hidden = state === 'refused';
    // Nothing of a finished or refused file is left to cancel on the server: it only leaves the list.
    this.#remove.textContent = state === 'finished' || state === 'refused' ? 'Remove' : 'Cancel';
  }

  /** Offers the finished upload for download. */
  downloadable(url: string, name: string): void {
    this.#download.href = url;
    this.#download.download = name;
    this.#download.hidden = false;
    this.#download.setAttribute('aria-label', `Download ${name}`);
  }
}
