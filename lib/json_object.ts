/**
 * JSON that must be an object. `JSON.parse` happily returns null, a number or an array for
 * well-formed text, and a reader that then looks up a field throws a TypeError instead of saying
 * the file is wrong; callers wrap this one's SyntaxError like a parse error and name their file.
 */
export function parseJsonObject(text: string): Record<string, unknown> {
  const v = JSON.parse(text) as unknown;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new SyntaxError(`expected a JSON object, found ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}`);
  }
  return v as Record<string, unknown>;
}
