// The config text -> a JSON value, with what JSON.parse does not say: a syntax error as line and column only
// (JSON.parse's message quotes the text around the error, which may be a PSK), and a key written twice in one
// object (JSON.parse keeps the last: a duplicated connection name silently loses the first connection).
// jsonc-parser (Microsoft's scanner behind VS Code's JSON support) gives positions and a property visitor;
// comments and trailing commas are turned off, so it accepts what JSON.parse accepts.
import jsonc, { type JSONPath } from 'jsonc-parser';

export type JsonResult = { ok: true; value: unknown } | { ok: false; errors: string[] };

// by jsonc-parser's names for its error codes (a const enum, which has no object at run time)
const PROBLEM: Record<string, string> = {
  InvalidSymbol: 'unexpected character',
  InvalidNumberFormat: 'malformed number',
  PropertyNameExpected: 'expected a property name in double quotes (a trailing comma?)',
  ValueExpected: 'expected a value (a trailing comma, or a missing value?)',
  ColonExpected: "expected ':' after the property name",
  CommaExpected: "expected ',' between two members",
  CloseBraceExpected: "expected '}' (an object is not closed)",
  CloseBracketExpected: "expected ']' (a list is not closed)",
  EndOfFileExpected: 'text after the end of the JSON value',
  InvalidCommentToken: 'comments are not JSON (use a "_comment" key)',
  UnexpectedEndOfComment: 'comments are not JSON (use a "_comment" key)',
  UnexpectedEndOfString: 'a string is not closed before the end of the line',
  UnexpectedEndOfNumber: 'malformed number',
  InvalidUnicode: 'malformed \\u escape in a string',
  InvalidEscapeCharacter: 'invalid escape in a string (only \\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)',
  InvalidCharacter: 'a control character inside a string (write it escaped)',
};

/** A key path as the config messages write it: connections.site-a.auth. */
function keyPath(path: JSONPath, key: string): string {
  return [...path, key].map((s) => (typeof s === 'number' ? `[${s}]` : s)).join('.').replace(/\.\[/g, '[');
}

/**
 * Parses `text` (the content of `file`). Errors name the file, line and column, never the text. Every object key
 * must be unique, except "_comment" (JSON has no comments; repeating one loses nothing).
 */
export function parseJson(text: string, file: string): JsonResult {
  if (text.trim() === '') return { ok: false, errors: [`${file}: is empty (expected a JSON object: { "connections": { ... } })`] };
  const errors: string[] = [];
  const at = (line: number, column: number) => `${file}:${line + 1}:${column + 1}`;
  // One map of key -> line per object being read, innermost last.
  const objects: Map<string, number>[] = [];
  jsonc.visit(
    text,
    {
      onObjectBegin: () => void objects.push(new Map()),
      onObjectEnd: () => void objects.pop(),
      onObjectProperty: (key, _offset, _length, line, column, pathSupplier) => {
        const seen = objects[objects.length - 1];
        if (seen === undefined || key === '_comment') return;
        const first = seen.get(key);
        if (first === undefined) seen.set(key, line);
        else errors.push(`${at(line, column)}: ${keyPath(pathSupplier(), key)} is defined twice (first on line ${first + 1}); JSON would keep only the last`);
      },
      onError: (code, _offset, _length, line, column) => {
        // the first syntax error is the one to fix; later ones are usually its echoes
        if (!errors.some((e) => e.includes('not valid JSON'))) errors.push(`${at(line, column)}: not valid JSON: ${PROBLEM[jsonc.printParseErrorCode(code)] ?? jsonc.printParseErrorCode(code)}`);
      },
    },
    { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false },
  );
  if (errors.length > 0) return { ok: false, errors };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    // Not expected after the scan above; still no text from JSON.parse's message.
    return { ok: false, errors: [`${file}: not valid JSON`] };
  }
}
