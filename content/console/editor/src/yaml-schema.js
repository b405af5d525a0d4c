// JSON Schema completion and hover for block-style YAML, without a YAML parser.
//
// A document being edited is rarely valid YAML ("devices:\n  x:\n    k" is a
// scalar "k", not a key), so the path at the cursor is read from indentation:
// from the cursor's line upwards, each line that starts a key with a smaller
// indent (or a `- ` sequence item) is one step of the path. The schema is then
// walked along that path: `$ref` (local `#/...` pointers), `allOf` merged,
// `anyOf`/`oneOf` unioned or narrowed by a discriminator (`discriminator`
// mapping, or alternatives whose `const`/`enum` property matches a sibling
// value such as `kind: dmx`), `properties`, `patternProperties`,
// `additionalProperties` objects, `items`/`prefixItems`.
//
// Everything here works on plain strings and plain objects, so it can be
// tested without a browser. Best effort: unknown shapes give no suggestions,
// never an exception.

const ITEM = { item: true };
const KEY_LINE = /^(\s*)((?:-[ \t]+)*)((?:"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"\-?:,[\]{}][^#]*?|-[^\s#][^#]*?))[ \t]*:(?:[ \t]+(.*))?$/;
const DASH_ONLY = /^(\s*)((?:-[ \t]*)+)(#.*)?$/;

function stripComment(value) {
  // A comment starts at " #" outside quotes; good enough for plain scalars.
  if (value === undefined) return "";
  const m = /(^|[ \t])#/.exec(value);
  return (m ? value.slice(0, m.index) : value).trim();
}

function unquote(key) {
  if (key.length >= 2 && key[0] === '"' && key.endsWith('"')) {
    try {
      return JSON.parse(key);
    } catch {
      return key.slice(1, -1);
    }
  }
  if (key.length >= 2 && key[0] === "'" && key.endsWith("'")) return key.slice(1, -1).replace(/''/g, "'");
  return key.trim();
}

function isBlank(line) {
  return /^\s*(#.*)?$/.test(line);
}

/** Parse one line: {indent, dashes: [columns], keyCol, key, value} or null fields. */
export function parseLine(line) {
  const m = KEY_LINE.exec(line);
  if (m) {
    const dashes = [];
    let col = m[1].length;
    const dashText = m[2];
    for (let i = 0; i < dashText.length; i++) if (dashText[i] === "-") dashes.push(col + i);
    return {
      indent: m[1].length,
      dashes,
      keyCol: m[1].length + m[2].length,
      key: unquote(m[3]),
      value: stripComment(m[4]),
    };
  }
  const d = DASH_ONLY.exec(line);
  if (d) {
    const dashes = [];
    for (let i = 0; i < d[2].length; i++) if (d[2][i] === "-") dashes.push(d[1].length + i);
    return { indent: d[1].length, dashes, keyCol: d[1].length + d[2].length, key: null, value: "" };
  }
  const indent = /^\s*/.exec(line)[0].length;
  const rest = line.slice(indent);
  const dashes = [];
  let i = 0;
  while (rest[i] === "-" && (rest[i + 1] === " " || rest[i + 1] === "\t")) {
    dashes.push(indent + i);
    i += 2;
    while (rest[i] === " " || rest[i] === "\t") i++;
  }
  return { indent, dashes, keyCol: indent + i, key: null, value: stripComment(rest.slice(i)) };
}

function opensBlock(value) {
  // "key:" followed by nothing, an anchor/tag, or a block scalar header.
  return value === "" || /^(&\S+|!\S*)$/.test(value);
}

/**
 * The path of the mapping that a key typed at `col` on line `lineNo` belongs to.
 * `lines` is the whole document split on "\n"; `lineNo` is 0-based; `dashes`
 * are the columns of the `- ` markers on the cursor's own line before `col`.
 * Returns {path, keys} or null: path is a list of keys (strings) and ITEM
 * markers from the root; keys[i] = {line, col} is where path[i] is written
 * (null for ITEM), so the siblings of each mapping on the way can be read.
 */
export function pathAt(lines, lineNo, col, dashes = []) {
  const steps = []; // innermost first
  const pushItems = (cols, line) => {
    for (let i = cols.length - 1; i >= 0; i--) steps.push({ seg: ITEM, at: null, line });
  };
  let need = col;
  let isItem = false;
  if (dashes.length) {
    pushItems(dashes, lineNo);
    need = dashes[0];
    isItem = true;
  }
  for (let n = lineNo - 1; n >= 0 && (need > 0 || isItem); n--) {
    const text = lines[n];
    if (isBlank(text)) continue;
    const p = parseLine(text);
    const first = p.dashes.length ? p.dashes[0] : p.keyCol;
    if (first > need) continue; // deeper content of an earlier sibling
    if (isItem) {
      if (p.dashes.length && first === need) continue; // an earlier item of the same sequence
      if (p.key !== null && !p.dashes.length && p.keyCol <= need) {
        if (!opensBlock(p.value)) return null;
        steps.push({ seg: p.key, at: { line: n, col: p.keyCol } });
        need = p.keyCol;
        isItem = false;
        continue;
      }
      if (first < need) {
        if (p.key !== null && p.keyCol <= need && opensBlock(p.value)) {
          steps.push({ seg: p.key, at: { line: n, col: p.keyCol } });
        } else if (p.key !== null || p.value !== "") {
          return null;
        }
        pushItems(p.dashes, n);
        need = first;
        isItem = p.dashes.length > 0;
        continue;
      }
      return null;
    }
    // The current node is a key of a block mapping at column `need`.
    if (!p.dashes.length && p.keyCol === need) continue; // a sibling key
    if (p.dashes.length && p.keyCol === need) {
      // The line that starts the sequence item holding our mapping.
      pushItems(p.dashes, n);
      need = first;
      isItem = true;
      continue;
    }
    if (first === need) continue; // a compact sequence under an earlier sibling
    // first < need: this must be the parent.
    if (p.key !== null && opensBlock(p.value)) {
      steps.push({ seg: p.key, at: { line: n, col: p.keyCol } });
    } else if (p.key !== null || p.value !== "") {
      return null;
    }
    pushItems(p.dashes, n);
    need = first;
    isItem = p.dashes.length > 0;
  }
  steps.reverse();
  return { path: steps.map((s) => s.seg), keys: steps.map((s) => s.at) };
}

/**
 * Key/value pairs of the block mapping whose keys start at `col`, around line
 * `lineNo`. Scans up and down until a line with a smaller indent (or, for a
 * sequence item mapping, the dash line that starts the item).
 */
export function siblingsAt(lines, lineNo, col) {
  const pairs = new Map();
  const take = (p) => {
    if (p.key !== null && p.keyCol === col && !pairs.has(p.key)) pairs.set(p.key, unquote(p.value));
  };
  for (let n = lineNo; n >= 0; n--) {
    const text = lines[n];
    if (text === undefined || isBlank(text)) continue;
    const p = parseLine(text);
    const first = p.dashes.length ? p.dashes[0] : p.keyCol;
    if (p.dashes.length && p.keyCol === col) {
      take(p);
      break; // the item starts here
    }
    if (first < col) break;
    take(p);
  }
  for (let n = lineNo + 1; n < lines.length; n++) {
    const text = lines[n];
    if (isBlank(text)) continue;
    const p = parseLine(text);
    const first = p.dashes.length ? p.dashes[0] : p.keyCol;
    if (first < col) break;
    if (p.dashes.length && first <= col) break;
    take(p);
  }
  return pairs;
}

// ---------------------------------------------------------------- schemas

function deref(root, schema, seen = 0) {
  if (!schema || typeof schema !== "object" || seen > 32) return schema;
  if (typeof schema.$ref === "string" && schema.$ref.startsWith("#")) {
    const target = resolvePointer(root, schema.$ref);
    if (target === undefined) return null;
    const { $ref, ...rest } = schema;
    const resolved = deref(root, target, seen + 1);
    return Object.keys(rest).length ? { ...resolved, ...rest } : resolved;
  }
  return schema;
}

function resolvePointer(root, ref) {
  const parts = ref.slice(1).split("/").filter((p) => p !== "");
  let cur = root;
  for (const raw of parts) {
    const part = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
    if (cur === null || typeof cur !== "object" || !(part in cur)) return undefined;
    cur = cur[part];
  }
  return cur;
}

/**
 * Flatten a schema into its concrete alternatives: $ref resolved, allOf
 * merged, anyOf/oneOf expanded. `siblings` (a Map of the mapping's scalar
 * values) narrows discriminated unions.
 */
export function alternatives(root, schema, siblings = null, depth = 0) {
  schema = deref(root, schema);
  if (!schema || typeof schema !== "object" || depth > 16) return [];
  let base = schema;
  if (Array.isArray(schema.allOf)) {
    let merged = { ...schema };
    delete merged.allOf;
    for (const part of schema.allOf) {
      for (const alt of alternatives(root, part, siblings, depth + 1)) merged = mergeSchemas(merged, alt);
    }
    base = merged;
  }
  const union = base.oneOf || base.anyOf;
  if (!Array.isArray(union)) return [base];
  const { oneOf, anyOf, discriminator, ...own } = base;
  let options = union;
  const prop = discriminator && discriminator.propertyName;
  if (prop && siblings && siblings.has(prop) && discriminator.mapping) {
    const ref = discriminator.mapping[siblings.get(prop)];
    if (ref) options = [{ $ref: ref }];
  }
  let out = [];
  for (const option of options) {
    for (const alt of alternatives(root, option, siblings, depth + 1)) out.push(mergeSchemas(own, alt));
  }
  if (siblings && siblings.size) {
    // Narrow by any sibling whose value matches a const/enum in some alternatives.
    for (const [key, value] of siblings) {
      const matching = out.filter((alt) => {
        const ps = alt.properties && deref(root, alt.properties[key]);
        if (!ps) return false;
        const values = enumValues(root, ps);
        return values.length === 0 || values.some((v) => String(v) === value);
      });
      const decisive = out.filter((alt) => {
        const ps = alt.properties && deref(root, alt.properties[key]);
        return ps && enumValues(root, ps).length > 0;
      });
      if (decisive.length && matching.length) out = matching;
    }
  }
  return out;
}

function mergeSchemas(a, b) {
  const out = { ...a, ...b };
  if (a.properties || b.properties) out.properties = { ...(a.properties || {}), ...(b.properties || {}) };
  if (a.patternProperties || b.patternProperties) {
    out.patternProperties = { ...(a.patternProperties || {}), ...(b.patternProperties || {}) };
  }
  return out;
}

function childSchemas(root, alts, seg) {
  const out = [];
  for (const alt of alts) {
    if (seg === ITEM) {
      if (alt.items && typeof alt.items === "object") out.push(alt.items);
      else if (Array.isArray(alt.prefixItems)) out.push(...alt.prefixItems);
      continue;
    }
    if (alt.properties && Object.prototype.hasOwnProperty.call(alt.properties, seg)) {
      out.push(alt.properties[seg]);
      continue;
    }
    let matched = false;
    if (alt.patternProperties) {
      for (const [pattern, sub] of Object.entries(alt.patternProperties)) {
        let re;
        try {
          re = new RegExp(pattern, "u");
        } catch {
          continue;
        }
        if (re.test(seg)) {
          out.push(sub);
          matched = true;
          break;
        }
      }
    }
    if (!matched && alt.additionalProperties && typeof alt.additionalProperties === "object") {
      out.push(alt.additionalProperties);
    }
  }
  return out;
}

/**
 * The schema alternatives for the mapping at `path`. `siblingsOf(i)` returns
 * the sibling Map of the mapping at depth i (0 = root), or null.
 */
export function schemasAt(root, path, siblingsOf = () => null) {
  let alts = alternatives(root, root, siblingsOf(0));
  for (let i = 0; i < path.length; i++) {
    const children = childSchemas(root, alts, path[i]);
    const sibs = siblingsOf(i + 1);
    alts = [];
    for (const child of children) alts.push(...alternatives(root, child, sibs));
    if (!alts.length) return [];
  }
  return alts;
}

export function enumValues(root, schema) {
  const values = [];
  for (const alt of alternatives(root, schema)) {
    if (Object.prototype.hasOwnProperty.call(alt, "const")) values.push(alt.const);
    if (Array.isArray(alt.enum)) values.push(...alt.enum);
    if (alt.type === "boolean") values.push(true, false);
  }
  return [...new Set(values)];
}

function typeSummary(root, schema) {
  const types = new Set();
  for (const alt of alternatives(root, schema)) {
    if (Object.prototype.hasOwnProperty.call(alt, "const")) types.add(JSON.stringify(alt.const));
    else if (Array.isArray(alt.type)) alt.type.forEach((t) => types.add(t));
    else if (alt.type) types.add(alt.type);
    else if (alt.properties || alt.patternProperties) types.add("object");
  }
  return [...types].join(" | ");
}

function isObjectLike(root, schema) {
  const alts = alternatives(root, schema);
  return (
    alts.length > 0 &&
    alts.every((a) => a.type === "object" || a.properties || a.patternProperties || a.additionalProperties)
  );
}

function describe(schema, root) {
  const s = deref(root, schema) || {};
  const text = s.description || (alternatives(root, s).find((a) => a.description) || {}).description || "";
  return text;
}

export function yamlScalar(value) {
  if (value === null) return "null";
  if (typeof value !== "string") return String(value);
  if (/^[A-Za-z_/][\w./-]*$/.test(value) && !/^(true|false|null|yes|no|on|off|~)$/i.test(value)) return value;
  return JSON.stringify(value);
}

/**
 * What to complete at `pos` in `text`.
 * Returns {from, options:[{label, apply, detail, info, type, boost}]} or null.
 */
export function completeAt(text, pos, root, explicit = true) {
  if (!root || typeof root !== "object") return null;
  const lines = text.split("\n");
  let lineNo = 0;
  let lineStart = 0;
  for (; lineNo < lines.length; lineNo++) {
    const end = lineStart + lines[lineNo].length;
    if (pos <= end) break;
    lineStart = end + 1;
  }
  if (lineNo >= lines.length) return null;
  const before = lines[lineNo].slice(0, pos - lineStart);
  if (/(^|\s)#/.test(before)) return null; // in a comment
  const ctx = {
    lines,
    lineNo,
    root,
  };

  // Typing a key: indent, optional "- ", a partial word.
  let m = /^(\s*)((?:-[ \t]+)*)([\w.-]*)$/.exec(before);
  if (m) {
    const word = m[3];
    if (!explicit && !word) return null;
    const dashes = [];
    for (let i = 0; i < m[2].length; i++) if (m[2][i] === "-") dashes.push(m[1].length + i);
    const col = m[1].length + m[2].length;
    const options = keyOptions(ctx, col, dashes);
    if (dashes.length) options.push(...valueOptionsForItem(ctx, col, dashes));
    return options.length ? { from: pos - word.length, options } : null;
  }
  // Typing a value: "key: partial".
  m = /^(\s*)((?:-[ \t]+)*)([^\s#'"\-?:,[\]{}][^#:]*?)[ \t]*:[ \t]+(["']?[\w./-]*)$/.exec(before);
  if (m) {
    const word = m[4];
    // Also offered without a word, right after "key: ": only keys with
    // enum/const/boolean values have any.
    const dashes = [];
    for (let i = 0; i < m[2].length; i++) if (m[2][i] === "-") dashes.push(m[1].length + i);
    const col = m[1].length + m[2].length;
    const options = valueOptions(ctx, col, dashes, m[3].trim());
    return options.length ? { from: pos - word.length, options } : null;
  }
  return null;
}

function mappingSchemas(ctx, col, dashes) {
  const where = pathAt(ctx.lines, ctx.lineNo, col, dashes);
  if (!where) return null;
  const { path, keys } = where;
  const siblingsOf = (depth) => {
    if (depth === path.length) return siblingsAt(ctx.lines, ctx.lineNo, col);
    const at = keys[depth];
    return at ? siblingsAt(ctx.lines, at.line, at.col) : null;
  };
  return { alts: schemasAt(ctx.root, path, siblingsOf), siblings: siblingsOf(path.length) };
}

function keyOptions(ctx, col, dashes) {
  const found = mappingSchemas(ctx, col, dashes);
  if (!found) return [];
  const { alts, siblings } = found;
  // One option per key, whatever the number of alternatives that have it
  // (the `kind` of a union has one `const` per alternative).
  const byKey = new Map();
  for (const alt of alts) {
    for (const [key, sub] of Object.entries(alt.properties || {})) {
      if (!byKey.has(key)) byKey.set(key, { subs: [], required: false });
      const entry = byKey.get(key);
      entry.subs.push(sub);
      if ((alt.required || []).includes(key)) entry.required = true;
    }
  }
  const current = parseLine(ctx.lines[ctx.lineNo]).key;
  const indent = " ".repeat(col);
  const options = [];
  for (const [key, { subs, required }] of byKey) {
    const used = siblings && siblings.has(key) && key !== current;
    const values = [...new Set(subs.flatMap((sub) => enumValues(ctx.root, sub)))];
    const objectLike = subs.every((sub) => isObjectLike(ctx.root, sub));
    const types = [...new Set(subs.map((sub) => typeSummary(ctx.root, sub)).filter(Boolean))];
    const info = subs.map((sub) => describe(sub, ctx.root)).find(Boolean) || (deref(ctx.root, subs[0]) || {}).title || "";
    options.push({
      label: key,
      apply: objectLike ? `${key}:\n${indent}  ` : values.length === 1 ? `${key}: ${yamlScalar(values[0])}` : `${key}: `,
      detail: (used ? "set · " : "") + (types.length > 3 ? `${types.length} kinds` : types.join(" | ")),
      info,
      type: "property",
      hasValues: values.length > 1,
      boost: used ? -20 : required ? 10 : 0,
    });
  }
  return options;
}

function valueOptions(ctx, col, dashes, key) {
  const found = mappingSchemas(ctx, col, dashes);
  if (!found) return [];
  const subs = childSchemas(ctx.root, found.alts, unquote(key));
  return scalarOptions(ctx, subs);
}

function valueOptionsForItem(ctx, col, dashes) {
  // "- partial" in a sequence of scalars: complete the items' enum values.
  const where = pathAt(ctx.lines, ctx.lineNo, col, dashes);
  if (!where || !where.path.length) return [];
  const alts = schemasAt(ctx.root, where.path.slice(0, -1));
  const items = childSchemas(ctx.root, alts, ITEM);
  return scalarOptions(ctx, items);
}

function scalarOptions(ctx, subs) {
  const seen = new Map();
  for (const sub of subs) {
    for (const alt of alternatives(ctx.root, sub)) {
      const values = enumValues(ctx.root, alt);
      for (const v of values) {
        const label = yamlScalar(v);
        if (!seen.has(label)) {
          seen.set(label, {
            label,
            apply: label,
            detail: typeof v,
            info: alt.description || describe(sub, ctx.root) || "",
            type: typeof v === "string" ? "enum" : "constant",
            boost: 0,
          });
        }
      }
    }
  }
  return [...seen.values()];
}

/** The description of the key at `pos` (for hover), or null. */
export function describeAt(text, pos, root) {
  if (!root || typeof root !== "object") return null;
  const lines = text.split("\n");
  let lineNo = 0;
  let lineStart = 0;
  for (; lineNo < lines.length; lineNo++) {
    const end = lineStart + lines[lineNo].length;
    if (pos <= end) break;
    lineStart = end + 1;
  }
  if (lineNo >= lines.length) return null;
  const p = parseLine(lines[lineNo]);
  if (p.key === null) return null;
  const col = pos - lineStart;
  const keyEnd = lines[lineNo].indexOf(":", p.keyCol);
  if (col < p.keyCol || col > keyEnd) return null;
  const ctx = { lines, lineNo, root };
  const found = mappingSchemas(ctx, p.keyCol, p.dashes);
  if (!found) return null;
  const subs = childSchemas(root, found.alts, p.key);
  if (!subs.length) return null;
  const sub = deref(root, subs[0]) || {};
  return {
    from: lineStart + p.keyCol,
    to: lineStart + keyEnd,
    title: p.key,
    type: typeSummary(root, subs[0]),
    description: describe(sub, root) || sub.title || "",
  };
}
