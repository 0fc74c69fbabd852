/** The page's element lookup and its screen-reader announcements. */

export const $ = <T extends Element>(selector: string, root: ParentNode = document) => root.querySelector(selector) as T;

/** Said by screen readers (an aria-live region): what changed that is worth hearing. */
export const announce = (text: string) => ($<HTMLElement>('#announce').textContent = text);
