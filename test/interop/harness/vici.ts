// Parser for `swanctl --pretty` output (vici messages printed as nested sections):
//   list-sa event {
//     t {
//       uniqueid = 1
//       local-ts = [
//         10.99.1.1/32
//       ]
//       child-sas {
//         t-1 { ... }
//       }
//     }
//   }
// The line-based pretty form is used rather than --raw because values may contain spaces (IDs).

export type ViciValue = string | string[] | ViciSection;
export interface ViciSection {
  [key: string]: ViciValue;
}

/** Returns the top-level messages (e.g. "list-sa event", "list-sas reply") with their bodies. */
export function parseViciPretty(text: string): { name: string; body: ViciSection }[] {
  const out: { name: string; body: ViciSection }[] = [];
  const stack: ViciSection[] = [];
  let listTarget: string[] | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (listTarget) {
      if (line === ']') listTarget = null;
      else listTarget.push(line);
      continue;
    }
    if (line === '}') {
      stack.pop();
      continue;
    }
    if (line.endsWith(' {') || line === '{') {
      const name = line.slice(0, -1).trim();
      const sec: ViciSection = {};
      if (stack.length === 0) out.push({ name, body: sec });
      else stack[stack.length - 1]![name] = sec;
      stack.push(sec);
      continue;
    }
    const eq = line.indexOf(' = ');
    if (eq > 0 && stack.length > 0) {
      const key = line.slice(0, eq);
      const value = line.slice(eq + 3);
      const top = stack[stack.length - 1]!;
      if (value === '[') {
        listTarget = [];
        top[key] = listTarget;
      } else {
        top[key] = value;
      }
    }
    // anything else (plugin warnings and such) is not part of a message
  }
  return out;
}
