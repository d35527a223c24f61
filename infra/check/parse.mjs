// Parses Bicep files with the tree-sitter Bicep grammar (its wasm build, run
// by web-tree-sitter: no native code) and prints one JSON document that
// infra's Go tests read:
//
//   node parse.mjs <file.bicep>...
//
// {"versions": {...}, "files": [{"path", "extensions", "errors", "tree"}]}
//
// The grammar (tree-sitter-bicep 1.1.0) predates the `extension` statement.
// Exactly the form `extension <identifier>` (optionally followed by a line
// comment) is blanked out with spaces of the same length, so every offset
// stays true, and recorded under "extensions"; any other line starting with
// `extension` is reported as an error, never skipped. Every ERROR or
// MISSING node is reported with its line and column. The process exits 0
// when it could parse; the Go tests decide what an error means.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Parser, Language } from 'web-tree-sitter';

const require = createRequire(import.meta.url);
const grammarWasm = require.resolve('tree-sitter-bicep/tree-sitter-bicep.wasm');
const versionOf = (name) =>
  JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), 'utf8')).version;
const versions = {
  'tree-sitter-bicep': versionOf('tree-sitter-bicep'),
  'web-tree-sitter': versionOf('web-tree-sitter'),
};

const EXTENSION_LINE = /^[ \t]*extension[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]*(\/\/.*)?$/;
const MAX_TEXT = 400; // node text is included up to this length

// blankExtensions returns the source with supported extension lines blanked
// and what it blanked, plus errors for extension lines of any other form.
export function blankExtensions(source) {
  const extensions = [];
  const errors = [];
  const lines = source.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    if (!/^\s*extension\b/.test(line)) continue;
    const m = EXTENSION_LINE.exec(line);
    if (m) {
      extensions.push({ line: i + 1, name: m[1], text: line });
      lines[i] = ' '.repeat(lines[i].length);
    } else {
      errors.push({
        line: i + 1,
        column: 1,
        type: 'unsupported-extension-form',
        text: line.slice(0, 120),
      });
    }
  }
  return { source: lines.join('\n'), extensions, errors };
}

function serialize(node, field) {
  const out = { t: node.type };
  if (field) out.f = field;
  const text = node.text;
  if (text.length <= MAX_TEXT) out.x = text;
  out.l = node.startPosition.row + 1;
  const children = [];
  for (let i = 0; i < node.childCount; i++) {
    const child = node.child(i);
    if (!child.isNamed && !child.isMissing) continue;
    children.push(serialize(child, node.fieldNameForChild(i)));
  }
  if (children.length) out.c = children;
  return out;
}

function collectErrors(node, errors) {
  if (node.isError || node.isMissing) {
    errors.push({
      line: node.startPosition.row + 1,
      column: node.startPosition.column + 1,
      type: node.isMissing ? `MISSING ${node.type}` : 'ERROR',
      text: node.text.slice(0, 120),
    });
    if (node.isMissing) return;
  }
  if (!node.hasError && !node.isError) return;
  for (let i = 0; i < node.childCount; i++) collectErrors(node.child(i), errors);
}

async function main(paths) {
  if (paths.length === 0) {
    console.error('usage: node parse.mjs <file.bicep>...');
    process.exit(2);
  }
  await Parser.init();
  const language = await Language.load(grammarWasm);
  const parser = new Parser();
  parser.setLanguage(language);
  const files = [];
  for (const path of paths) {
    const { source, extensions, errors } = blankExtensions(readFileSync(path, 'utf8'));
    const tree = parser.parse(source);
    collectErrors(tree.rootNode, errors);
    files.push({ path, extensions, errors, tree: serialize(tree.rootNode) });
    tree.delete();
  }
  process.stdout.write(JSON.stringify({ versions, files }) + '\n');
}

await main(process.argv.slice(2));
