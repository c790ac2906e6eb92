// The YAML twin of the config file: the same keys and values as the JSON one (config.schema.json serves both;
// YAML editors read it through yaml-language-server), parsed by `yaml` (eemeli/yaml: YAML 1.2, no code
// execution, duplicate keys as errors) into the same value parseConfig takes. As for JSON, an error names the
// file, line and column and never the text around it, which may hold a PSK: the library's own messages quote
// the source, so only its error code is turned into words here.
import { parseDocument } from 'yaml';
import type { JsonResult } from './json.js';

// by the library's error codes; anything else is said by its code
const PROBLEM: Record<string, string> = {
  DUPLICATE_KEY: 'a key is defined twice in one mapping',
  BAD_INDENT: 'wrong indentation',
  BAD_DIRECTIVE: 'unknown directive',
  BAD_DQ_ESCAPE: 'invalid escape in a double-quoted string',
  BAD_SCALAR_START: 'a plain value cannot start with this character (quote it)',
  BLOCK_AS_IMPLICIT_KEY: 'a block value used as a key',
  BLOCK_IN_FLOW: 'a block value inside [ ] or { }',
  MISSING_CHAR: 'a quote or bracket is not closed',
  MULTILINE_IMPLICIT_KEY: 'a key spans several lines',
  MULTIPLE_ANCHORS: 'two anchors on one node',
  MULTIPLE_DOCS: 'more than one document (---): the config is one mapping',
  MULTIPLE_TAGS: 'two tags on one node',
  TAB_AS_INDENT: 'a tab used for indentation (use spaces)',
  TAG_RESOLVE_FAILED: 'an unknown tag',
  UNEXPECTED_TOKEN: 'unexpected text',
  ALIAS_PROPS: 'an alias with an anchor or tag',
  BAD_ALIAS: 'an alias to no anchor',
  KEY_OVER_1024_CHARS: 'a key longer than 1024 characters',
};

/** A key may be named in an error (keys are config names, never secrets), when it looks like one. */
const KEY_NAME = /^[A-Za-z0-9_.@%:-]{1,64}$/;

/** Parses `text` (the content of `file`) as YAML 1.2; errors name the file, line and column, never the text. */
export function parseYaml(text: string, file: string): JsonResult {
  if (text.trim() === '') return { ok: false, errors: [`${file}: is empty (expected a YAML mapping: connections: ...)`] };
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true, strict: true });
  const errors = doc.errors.map((e) => {
    const at = e.linePos?.[0];
    const where = at ? `${file}:${at.line}:${at.col}` : file;
    let what = PROBLEM[e.code] ?? e.code.toLowerCase().replace(/_/g, ' ');
    if (e.code === 'DUPLICATE_KEY') {
      // the error points at the key's first character: the key runs to its colon (quotes off)
      const key = /^([^:\n]*):/.exec(text.slice(e.pos[0]))?.[1]?.trim().replace(/^(["'])(.*)\1$/, '$2') ?? '';
      if (KEY_NAME.test(key)) what = `${key} is defined twice in one mapping`;
    }
    return `${where}: not valid YAML: ${what}`;
  });
  // the first error is the one to fix; more of the same kind are usually its echoes
  if (errors.length > 0) return { ok: false, errors: [...new Set(errors)].slice(0, 5) };
  try {
    // aliases may not multiply the document (a "billion laughs" file): the library's cap of 100 expansions
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) };
  } catch (e) {
    // the library throws (without a code) when aliases expand too far
    const aliases = /alias/i.test((e as Error).message);
    return { ok: false, errors: [`${file}: not valid YAML${aliases ? ': aliases expand too far (at most 100 expansions)' : ''}`] };
  }
}
