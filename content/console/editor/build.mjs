// Builds the curator studio's editor bundle:
//   ../static/vendor/codemirror/editor.js     one self-contained, minified ES module
//   ../static/vendor/codemirror/LICENSES.txt  the licence of every package inside it
//   ../static/vendor/codemirror/README.md     versions, how to rebuild, SHA-256 of editor.js
//
//   node build.mjs           build and write the three files
//   node build.mjs --check   build in memory; exit 1 if the committed files differ
//
// The output depends only on package-lock.json and src/: no timestamps, no
// absolute paths, packages listed in sorted order.

import { build, version as esbuildVersion } from "esbuild";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, "..", "static", "vendor", "codemirror");
const check = process.argv.includes("--check");

// The console's Content-Security-Policy says `style-src 'self'`: no inline
// <style>. style-mod (CodeMirror's style injector) uses a <style> element for
// a document and constructed stylesheets (adoptedStyleSheets, which CSP does
// not restrict) only for shadow roots. One condition is changed so that a
// document gets constructed stylesheets too where the browser has them (an
// old browser without them still gets the <style> element). The build fails if
// the condition is not found, so an upgrade of style-mod cannot drop the patch
// silently.
const STYLE_MOD_FROM = "if (!root.head && root.adoptedStyleSheets && win.CSSStyleSheet) {";
const STYLE_MOD_TO = "if (root.adoptedStyleSheets && win.CSSStyleSheet) {";
let patched = false;
const cspSafeStyles = {
  name: "csp-safe-style-mod",
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]style-mod[\\/]src[\\/]style-mod\.js$/ }, (args) => {
      const source = readFileSync(args.path, "utf8");
      if (!source.includes(STYLE_MOD_FROM)) {
        throw new Error("style-mod changed: the constructed-stylesheet patch in build.mjs no longer applies");
      }
      patched = true;
      return { contents: source.replace(STYLE_MOD_FROM, STYLE_MOD_TO), loader: "js" };
    });
  },
};

const result = await build({
  absWorkingDir: here,
  entryPoints: ["src/editor.js"],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2020",
  minify: true,
  sourcemap: false,
  legalComments: "none",
  charset: "ascii",
  metafile: true,
  write: false,
  logLevel: "warning",
  plugins: [cspSafeStyles],
  banner: {
    js: "/* Curator studio editor: CodeMirror 6 (MIT) and friends; licences in LICENSES.txt. Built by content/console/editor/build.mjs: do not edit. */",
  },
});

if (!patched) throw new Error("style-mod was not bundled from node_modules/style-mod/src/style-mod.js; check the CSP patch");
const bundle = result.outputFiles[0].contents;

// Every package with code in the bundle, from esbuild's own record of inputs.
const packages = new Map();
for (const [input, info] of Object.entries(result.metafile.outputs[Object.keys(result.metafile.outputs)[0]].inputs)) {
  if (info.bytesInOutput === 0) continue;
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (!m || packages.has(m[1])) continue;
  const dir = join(here, "node_modules", m[1]);
  const meta = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const licenceFile = readdirSync(dir)
    .filter((f) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(f))
    .sort()[0];
  if (!licenceFile) throw new Error(`${m[1]} has no LICENSE file; add its licence text by hand`);
  packages.set(m[1], {
    name: m[1],
    version: meta.version,
    license: meta.license,
    text: readFileSync(join(dir, licenceFile), "utf8").replace(/\r\n/g, "\n").trim(),
  });
}
const sorted = [...packages.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

const rule = "=".repeat(78);
const licences =
  "Licences of the packages bundled into editor.js\n\n" +
  sorted
    .map((p) => `${rule}\n${p.name} ${p.version} (${p.license})\n${rule}\n\n${p.text}\n`)
    .join("\n");

const sha256 = createHash("sha256").update(bundle).digest("hex");
const own = JSON.parse(readFileSync(join(here, "package.json"), "utf8"));
const readme = `# Curator studio editor (vendored CodeMirror 6)

\`editor.js\` is a single, self-contained, minified ES module with the YAML
editor of the console's curator studio: CodeMirror 6, YAML highlighting,
completion of keys and values from the exhibit's JSON Schema, the server's
problems shown as lint diagnostics, the console's dark palette. It imports
nothing and fetches nothing: the console runs on closed gallery networks,
without a CDN.

It is built from \`content/console/editor/\` (sources, pinned
\`package.json\` and \`package-lock.json\`); do not edit it by hand.

## API

\`\`\`js
import { createEditor } from "/static/vendor/codemirror/editor.js";
const editor = createEditor(parent, { doc, schema, onChange, onSave, readOnly, label });
// editor.view, getText(), setText(text), setProblems([{line, column, message, severity}]),
// setSchema(schema), setReadOnly(flag), focus()
\`\`\`

## Rebuild

\`\`\`sh
cd content/console/editor && npm ci && node build.mjs
\`\`\`

\`node build.mjs --check\` rebuilds in memory and fails if these files differ
from what the sources produce. Building twice gives identical bytes.

## Versions

Built with esbuild ${esbuildVersion} (format esm, target es2020, minified).

| package | version | licence |
| --- | --- | --- |
${sorted.map((p) => `| ${p.name} | ${p.version} | ${p.license} |`).join("\n")}

Licence texts: \`LICENSES.txt\`. Direct dependencies pinned in
\`content/console/editor/package.json\`: ${Object.entries(own.dependencies)
  .map(([n, v]) => `${n} ${v}`)
  .join(", ")}.

## Integrity

- size: ${bundle.length} bytes
- SHA-256 of \`editor.js\`: \`${sha256}\`
`;

const files = {
  "editor.js": Buffer.from(bundle),
  "LICENSES.txt": Buffer.from(licences, "utf8"),
  "README.md": Buffer.from(readme, "utf8"),
};

if (check) {
  let stale = false;
  for (const [name, data] of Object.entries(files)) {
    const path = join(outDir, name);
    if (!existsSync(path) || !readFileSync(path).equals(data)) {
      console.error(`stale: ${path}`);
      stale = true;
    }
  }
  if (stale) process.exit(1);
  console.log(`up to date: editor.js ${bundle.length} bytes, sha256 ${sha256}`);
} else {
  mkdirSync(outDir, { recursive: true });
  for (const [name, data] of Object.entries(files)) writeFileSync(join(outDir, name), data);
  console.log(`wrote editor.js (${bundle.length} bytes, sha256 ${sha256}), LICENSES.txt (${sorted.length} packages), README.md`);
}
