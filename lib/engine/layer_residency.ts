/**
 * Which of a timeline's layers live only in remote storage (docs/REMOTE.md, "On-demand download
 * and eviction"; docs/FORMAT.md, "Remote-only layers"), and which layers a read may need.
 *
 * A timeline directory may hold `remote_layers.json`: `{ "format": 1, "layers": { "<layer name>":
 * <generation of its object key>, ... } }`. A layer the manifest names is local when its file is
 * present with the manifest's size; otherwise it must be listed here, and is then fetched from
 * `<layer name>-<generation>` when a read needs it. The list is written (atomically, durably)
 * before a file is evicted and before an on-demand attach writes its manifests, so a reopen never
 * finds a layer that is neither here nor listed; an entry whose file exists is stale and ignored.
 * It is kept out of the manifest on purpose: the manifest is the commit point of layer swaps and is
 * uploaded as the timeline's index, while residency is a per-node cache decision.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StrataError } from '../errors';
import { parseJsonObject } from '../json_object';
import { writeFileAtomic, wrapIo } from '../fs_util';
import type { Lsn } from '../lsn';
import type { LayerDesc } from './manifest';
import { checkGeneration } from './remote_layout';

export const REMOTE_LAYERS_FILE = 'remote_layers.json';
const REMOTE_LAYERS_FORMAT = 1;

/** Remote-only layers recorded in `dir`: layer name → generation of its object key (empty without the file). */
export function readRemoteOnly(dir: string): Map<string, number> {
  const file = path.join(dir, REMOTE_LAYERS_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new StrataError('IO_ERROR', `${file}: ${(e as Error).message}`, { cause: e });
  }
  let json: { format?: unknown; layers?: unknown };
  try {
    json = parseJsonObject(text);
  } catch (e) {
    throw new StrataError('CORRUPT_MANIFEST', `${file}: unreadable: ${(e as Error).message}`, { cause: e });
  }
  if (json.format !== REMOTE_LAYERS_FORMAT || typeof json.layers !== 'object' || json.layers === null) {
    throw new StrataError('CORRUPT_MANIFEST', `${file}: not a format ${REMOTE_LAYERS_FORMAT} remote layer list`);
  }
  const out = new Map<string, number>();
  for (const [name, g] of Object.entries(json.layers as Record<string, unknown>)) {
    try {
      out.set(name, checkGeneration(g, 'generation'));
    } catch {
      throw new StrataError('CORRUPT_MANIFEST', `${file}: layer ${name} has a bad generation ${JSON.stringify(g)}`);
    }
  }
  return out;
}

/** Replace the list atomically and durably. */
export function writeRemoteOnly(dir: string, layers: ReadonlyMap<string, number>): void {
  const file = path.join(dir, REMOTE_LAYERS_FILE);
  const body = JSON.stringify({ format: REMOTE_LAYERS_FORMAT, layers: Object.fromEntries([...layers].sort(([a], [b]) => (a < b ? -1 : 1))) }) + '\n';
  wrapIo(`writing ${file}`, () => writeFileAtomic(file, body));
}

/** What a read-need computation sees of one timeline of a read's chain. */
export interface NeedSegment {
  /** Historic layers, any order. */
  layerDescs(): readonly LayerDesc[];
  readonly ancestorLsn: Lsn | null;
  readonly needParent: NeedSegment | null;
}

/**
 * The layers of `head` and its ancestors that a read of the keys (36-hex-digit ids) at `lsn` may
 * visit, as `visit(segment, layer)` calls: per timeline, the newest covering image at or below the
 * read's cap (an image ends the walk: it holds the key's page or says there is none) and every
 * covering layer starting at or below the cap with records above that image's LSN (all covering
 * layers when there is no image, then the ancestor capped at the branch point). This follows the
 * core's candidate order (docs/ARCHITECTURE.md, "GetPage@LSN"; lib/core/ts/layer_map.ts).
 * A superset of what the core reads (a delta's will-init record may end its walk earlier), so a
 * read whose needed layers are all local never touches a missing one.
 */
export function visitNeededLayers(head: NeedSegment, keyHexes: readonly string[], lsn: Lsn, visit: (s: NeedSegment, l: LayerDesc) => void): void {
  for (const k of keyHexes) {
    let cap = lsn;
    for (let s: NeedSegment | null = head; s !== null; s = s.needParent) {
      let image: LayerDesc | null = null;
      const covering: LayerDesc[] = [];
      for (const l of s.layerDescs()) {
        if (l.lsnStart > cap || k < l.keyStart || k >= l.keyEnd) continue;
        covering.push(l);
        if (l.kind === 'image' && (image === null || l.lsnStart > image.lsnStart)) image = l;
      }
      // The core visits, newest first, layers by min(lsnEnd, cap + 1), an image winning a tie: so
      // it reaches the image before any layer with no record above the image's LSN.
      for (const l of covering) if (image === null || l === image || l.lsnEnd > image.lsnStart + 1n) visit(s, l);
      if (image !== null) break;
      if (s.ancestorLsn !== null && s.ancestorLsn < cap) cap = s.ancestorLsn;
    }
  }
}
