/**
 * The console build's manifest (written by scripts/build-console.mjs): the only files the plugin
 * will serve, with their content type, a content hash for ETags, whether the name itself is
 * content-addressed (and so cacheable forever), and which precompressed copies exist.
 */
import { readFile } from 'node:fs/promises';

export interface ManifestFile {
  type: string;
  hash: string;
  immutable: boolean;
  /** Precompressed siblings: `br` → `<name>.br`, `gzip` → `<name>.gz`, in order of preference. */
  encodings: ('br' | 'gzip')[];
}

export interface ConsoleManifest {
  version: 1;
  builtAt: string;
  files: Record<string, ManifestFile>;
}

export async function loadManifest(path: string): Promise<ConsoleManifest> {
  const raw = JSON.parse(await readFile(path, 'utf8')) as Partial<ConsoleManifest>;
  if (raw.version !== 1 || typeof raw.files !== 'object' || raw.files === null) {
    throw new Error(`${path} is not a console manifest (version 1); rebuild the console`);
  }
  return raw as ConsoleManifest;
}
