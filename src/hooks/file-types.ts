import type { Hooks } from './types.ts';

/**
 * A pre-create hook that accepts only the listed MIME types (`image/*` style wildcards allowed,
 * from the `filetype`/`type` metadata) and file extensions (from `filename`/`name`). An empty list
 * allows everything of that kind.
 */
export function fileTypeLimits(types: string[], extensions: string[]): Hooks | undefined {
  if (types.length === 0 && extensions.length === 0) return undefined;
  const typeOk = (type: string) => types.some((allowed) => (allowed.endsWith('/*') ? type.startsWith(allowed.slice(0, -1)) : type === allowed.toLowerCase()));
  const extensionOk = (name: string) => {
    const ext = name.includes('.') ? name.slice(name.lastIndexOf('.') + 1).toLowerCase() : '';
    return extensions.some((allowed) => allowed.replace(/^\./, '').toLowerCase() === ext);
  };
  return {
    'pre-create': ({ upload }) => {
      const type = (upload.metadata.filetype ?? upload.metadata.type ?? '').toLowerCase();
      const name = upload.metadata.filename ?? upload.metadata.name ?? '';
      if (types.length && !typeOk(type)) return { reject: { status: 415, message: `file type "${type || 'none'}" is not accepted` } };
      if (extensions.length && !extensionOk(name))
        return { reject: { status: 415, message: `file "${name || 'without a name'}" has an extension that is not accepted` } };
    },
  };
}
