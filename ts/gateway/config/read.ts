// Reading a config file: a regular file under a size cap, UTF-8 text, then JSON or, by its name (.yaml /
// .yml), YAML: both give the one value parseConfig checks.
import { MAX_CONFIG_BYTES, readRegularFile, utf8Text } from './file.js';
import { parseJson, type JsonResult } from './json.js';
import { parseYaml } from './yaml.js';

/** Whether a config file is read as YAML (by its extension); anything else is JSON. */
export function isYamlConfig(file: string): boolean {
  return /\.ya?ml$/i.test(file);
}

/** Reads, checks (a regular file, size cap, UTF-8 text) and parses a config file; `mode`: its permission bits. */
export function readConfigFile(file: string): JsonResult & { mode?: number } {
  const read = readRegularFile(file, MAX_CONFIG_BYTES, 'the config file');
  if (!read.ok) return { ok: false, errors: [`${file}: ${read.error}`] };
  const text = utf8Text(read.value.bytes, 'the config file');
  if (!text.ok) return { ok: false, errors: [`${file}: ${text.error}`] };
  return { ...(isYamlConfig(file) ? parseYaml(text.value, file) : parseJson(text.value, file)), mode: read.value.mode };
}
