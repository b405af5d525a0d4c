// The curator studio's YAML editor: CodeMirror 6 with YAML highlighting,
// completion from the exhibit's JSON Schema, the server checker's problems as
// lint diagnostics, and the console's dark palette. Bundled into one file by
// build.mjs; see README.md.

import { Annotation, Compartment, EditorState, Prec, StateEffect, StateField, Transaction } from "@codemirror/state";
import {
  EditorView,
  crosshairCursor,
  drawSelection,
  dropCursor,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  hoverTooltip,
  keymap,
  lineNumbers,
  rectangularSelection,
} from "@codemirror/view";
import { defaultKeymap, history, historyKeymap, indentWithTab, isolateHistory } from "@codemirror/commands";
import {
  HighlightStyle,
  bracketMatching,
  foldGutter,
  foldKeymap,
  indentOnInput,
  indentService,
  indentUnit,
  syntaxHighlighting,
} from "@codemirror/language";
import {
  autocompletion,
  closeBrackets,
  closeBracketsKeymap,
  completionKeymap,
} from "@codemirror/autocomplete";
import { highlightSelectionMatches, search, searchKeymap } from "@codemirror/search";
import { lintGutter, lintKeymap, setDiagnostics } from "@codemirror/lint";
import { yaml } from "@codemirror/lang-yaml";
import { tags } from "@lezer/highlight";
import { completeAt, describeAt } from "./yaml-schema.js";

const palette = {
  bg: "#0d1117",
  panel: "#161b24",
  panel2: "#1f2633",
  line: "#2d3545",
  text: "#e8eaef",
  muted: "#9aa3b2",
  bad: "#d93636",
  warn: "#e0a100",
  accent: "#ffb347",
};
const fontFamily = 'ui-monospace, "Exhibit Sans", monospace';

const theme = EditorView.theme(
  {
    "&": {
      height: "100%",
      color: palette.text,
      backgroundColor: palette.bg,
      fontSize: "15px",
    },
    "&.cm-focused": { outline: `2px solid ${palette.accent}`, outlineOffset: "-2px" },
    ".cm-scroller": { fontFamily, lineHeight: "1.5", overflow: "auto" },
    ".cm-content": { caretColor: palette.accent },
    ".cm-cursor, .cm-dropCursor": { borderLeftColor: palette.accent, borderLeftWidth: "2px" },
    "&.cm-focused > .cm-scroller > .cm-selectionLayer .cm-selectionBackground, .cm-selectionBackground, .cm-content ::selection":
      { backgroundColor: "#3a4a66" },
    ".cm-activeLine": { backgroundColor: "#ffffff08" },
    ".cm-activeLineGutter": { backgroundColor: palette.panel2, color: palette.text },
    ".cm-gutters": { backgroundColor: palette.panel, color: palette.muted, border: "none", borderRight: `1px solid ${palette.line}` },
    ".cm-foldPlaceholder": { backgroundColor: palette.panel2, border: `1px solid ${palette.line}`, color: palette.muted },
    ".cm-matchingBracket, .cm-nonmatchingBracket": { backgroundColor: "#ffb34733", outline: `1px solid ${palette.accent}` },
    ".cm-searchMatch": { backgroundColor: "#e0a10044", outline: `1px solid ${palette.warn}` },
    ".cm-searchMatch.cm-searchMatch-selected": { backgroundColor: "#ffb34766" },
    ".cm-selectionMatch": { backgroundColor: "#ffffff14" },
    ".cm-panels": { backgroundColor: palette.panel, color: palette.text },
    ".cm-panels.cm-panels-top": { borderBottom: `1px solid ${palette.line}` },
    ".cm-panels.cm-panels-bottom": { borderTop: `1px solid ${palette.line}` },
    ".cm-panel input, .cm-panel button, .cm-textfield, .cm-button": {
      fontFamily,
      color: palette.text,
      backgroundColor: palette.panel2,
      backgroundImage: "none",
      border: `1px solid ${palette.line}`,
      borderRadius: "6px",
    },
    ".cm-tooltip": { fontFamily: '"Exhibit Sans", system-ui, sans-serif', backgroundColor: palette.panel2, color: palette.text, border: `1px solid ${palette.line}`, borderRadius: "6px" },
    ".cm-tooltip .cm-tooltip-arrow:before": { borderTopColor: palette.line, borderBottomColor: palette.line },
    ".cm-tooltip .cm-tooltip-arrow:after": { borderTopColor: palette.panel2, borderBottomColor: palette.panel2 },
    ".cm-tooltip-autocomplete > ul": { fontFamily, maxHeight: "16em" },
    ".cm-tooltip-autocomplete > ul > li": { padding: "2px 8px" },
    ".cm-tooltip-autocomplete > ul > li[aria-selected]": { backgroundColor: "#ffb34733", color: palette.text },
    ".cm-completionDetail": { color: palette.muted, fontStyle: "normal", marginLeft: "1em" },
    ".cm-completionMatchedText": { color: palette.accent, textDecoration: "none" },
    ".cm-completionInfo": { maxWidth: "32em", whiteSpace: "pre-wrap", padding: "6px 10px" },
    ".cm-schemaHover": { maxWidth: "32em", padding: "6px 10px", whiteSpace: "pre-wrap" },
    ".cm-schemaHover b": { color: palette.accent },
    ".cm-schemaHover .cm-schemaType": { color: palette.muted, marginLeft: "0.5em" },
    ".cm-diagnostic-error": { borderLeftColor: palette.bad },
    ".cm-diagnostic-warning": { borderLeftColor: palette.warn },
    ".cm-lintRange-error": {
      backgroundImage: "none",
      textDecoration: `underline wavy ${palette.bad}`,
      textDecorationSkipInk: "none",
      textUnderlineOffset: "3px",
    },
    ".cm-lintRange-warning": {
      backgroundImage: "none",
      textDecoration: `underline wavy ${palette.warn}`,
      textDecorationSkipInk: "none",
      textUnderlineOffset: "3px",
    },
    ".cm-lintPoint-error:after": { borderBottomColor: palette.bad },
    ".cm-lintPoint-warning:after": { borderBottomColor: palette.warn },
  },
  { dark: true },
);

const highlight = HighlightStyle.define([
  { tag: tags.definition(tags.propertyName), color: "#7cc4ff" },
  { tag: tags.string, color: "#b5e38b" },
  { tag: [tags.content, tags.attributeValue], color: palette.text },
  { tag: tags.lineComment, color: palette.muted, fontStyle: "italic" },
  { tag: [tags.keyword, tags.meta], color: palette.accent },
  { tag: [tags.labelName, tags.typeName], color: "#d7a6ff" },
  { tag: tags.special(tags.string), color: palette.accent },
  { tag: [tags.separator, tags.punctuation, tags.squareBracket, tags.brace], color: palette.muted },
]);

/** Marks the transactions made by setText, so onChange ignores them. */
const programmatic = Annotation.define();

const setSchemaEffect = StateEffect.define();
const schemaField = StateField.define({
  create: () => null,
  update(value, tr) {
    for (const e of tr.effects) if (e.is(setSchemaEffect)) value = e.value;
    return value;
  },
});

function schemaCompletion(context) {
  const schema = context.state.field(schemaField, false);
  if (!schema) return null;
  let result;
  try {
    result = completeAt(context.state.doc.toString(), context.pos, schema, context.explicit);
  } catch (err) {
    console.warn("schema completion failed", err);
    return null;
  }
  if (!result) return null;
  return {
    from: result.from,
    validFor: /^["']?[\w./-]*$/,
    options: result.options.map((o) => ({
      label: o.label,
      detail: o.detail,
      info: o.info || undefined,
      type: o.type,
      boost: o.boost,
      apply: o.apply,
      // "key: " for a key with values: offer the values right away.
      reopen: /: $/.test(o.apply) && o.hasValues,
    })),
  };
}

const schemaHover = hoverTooltip((view, pos) => {
  const schema = view.state.field(schemaField, false);
  if (!schema) return null;
  let found;
  try {
    found = describeAt(view.state.doc.toString(), pos, schema);
  } catch {
    return null;
  }
  if (!found || (!found.description && !found.type)) return null;
  return {
    pos: found.from,
    end: found.to,
    above: true,
    create() {
      const dom = document.createElement("div");
      dom.className = "cm-schemaHover";
      const name = document.createElement("b");
      name.textContent = found.title;
      dom.appendChild(name);
      if (found.type) {
        const type = document.createElement("span");
        type.className = "cm-schemaType";
        type.textContent = found.type;
        dom.appendChild(type);
      }
      if (found.description) dom.appendChild(document.createTextNode("\n" + found.description));
      return { dom };
    },
  };
});

/**
 * Block-YAML indentation from the line above: one step deeper after "key:"
 * (or a block scalar header "key: |"), the item's content column after
 * "- key: value", otherwise the same indentation. Predictable where the YAML
 * parser's tree is still incomplete.
 */
const yamlIndent = indentService.of((cx, pos) => {
  let line = cx.lineAt(pos, -1);
  if (line.from === pos && !cx.options.simulateBreak) {
    if (pos === 0) return 0;
    line = cx.lineAt(pos - 1, -1);
  }
  for (;;) {
    const text = line.from + line.text.length > pos ? line.text.slice(0, pos - line.from) : line.text;
    if (/\S/.test(text) && !/^\s*#/.test(text)) {
      const body = text.replace(/\s+#.*$/, "").replace(/\s+$/, "");
      const indent = /^\s*/.exec(body)[0].length;
      const dashes = /^\s*((?:-[ \t]+)*)/.exec(body)[1];
      const content = indent + dashes.length;
      const unit = cx.unit;
      if (/:$/.test(body) || /:[ \t]+[|>][-+0-9]*$/.test(body) || /:[ \t]+(&\S+|!\S+)$/.test(body)) return content + unit;
      if (dashes && /^[^:]*:(\s|$)/.test(body.slice(content))) return content;
      if (dashes) return indent;
      return indent;
    }
    if (line.from === 0) return 0;
    line = cx.lineAt(line.from - 1, -1);
  }
});

function toDiagnostics(doc, list) {
  const out = [];
  for (const problem of Array.isArray(list) ? list : []) {
    if (!problem) continue;
    const lineNo = Math.min(Math.max(1, Math.trunc(Number(problem.line)) || 1), doc.lines);
    const line = doc.line(lineNo);
    const column = Math.max(1, Math.trunc(Number(problem.column)) || 1);
    const from = line.from + Math.min(column - 1, line.length);
    const rest = line.text.slice(from - line.from);
    let length;
    if (/^\s/.test(rest) || rest === "") {
      // At indentation or past the end: underline the line's content.
      const trimmed = line.text.replace(/\s+$/, "");
      const start = Math.max(from - line.from, line.text.length - line.text.trimStart().length);
      length = 0;
      if (start < trimmed.length) {
        out.push(diagnostic(line.from + start, line.from + trimmed.length, problem));
        continue;
      }
    } else if (rest[0] === '"' || rest[0] === "'") {
      const close = rest.indexOf(rest[0], 1);
      length = close > 0 ? close + 1 : rest.length;
    } else {
      const m = /^[^\s:,[\]{}#]+/.exec(rest);
      length = m ? m[0].length : 1;
    }
    out.push(diagnostic(from, from + length, problem));
  }
  return out;
}

function diagnostic(from, to, problem) {
  return {
    from,
    to,
    severity: problem.severity === "warning" ? "warning" : "error",
    message: String(problem.message ?? ""),
    source: problem.source ? String(problem.source) : undefined,
  };
}

/**
 * Create the editor inside `parent` (it fills the parent; give the parent a height).
 */
export function createEditor(
  parent,
  { doc = "", schema = null, onChange = null, onSave = null, readOnly = false, label = "exhibit.yaml" } = {},
) {
  const readOnlyConf = new Compartment();
  const readOnlyExt = (flag) => [EditorState.readOnly.of(!!flag), EditorView.editorAttributes.of({ "data-readonly": flag ? "true" : "false" })];

  const changeListener = EditorView.updateListener.of((update) => {
    if (!update.docChanged || typeof onChange !== "function") return;
    if (update.transactions.every((tr) => !tr.docChanged || tr.annotation(programmatic))) return;
    onChange(update.state.doc.toString());
  });

  const saveKeys = Prec.highest(
    keymap.of([
      {
        key: "Mod-s",
        preventDefault: true,
        run: () => {
          if (typeof onSave === "function") onSave();
          return true;
        },
      },
    ]),
  );

  const state = EditorState.create({
    doc,
    extensions: [
      saveKeys,
      lineNumbers(),
      highlightActiveLineGutter(),
      highlightSpecialChars(),
      history(),
      foldGutter(),
      drawSelection(),
      dropCursor(),
      EditorState.allowMultipleSelections.of(true),
      EditorState.tabSize.of(2),
      indentUnit.of("  "),
      indentOnInput(),
      syntaxHighlighting(highlight),
      bracketMatching(),
      closeBrackets(),
      autocompletion({ override: [schemaCompletion], icons: false, activateOnCompletion: (c) => c.reopen === true }),
      rectangularSelection(),
      crosshairCursor(),
      highlightActiveLine(),
      highlightSelectionMatches(),
      search({ top: true }),
      lintGutter(),
      keymap.of([
        ...closeBracketsKeymap,
        ...defaultKeymap,
        ...searchKeymap,
        ...historyKeymap,
        ...foldKeymap,
        ...completionKeymap,
        ...lintKeymap,
        indentWithTab,
      ]),
      yaml(),
      yamlIndent,
      schemaField.init(() => schema),
      schemaHover,
      readOnlyConf.of(readOnlyExt(readOnly)),
      changeListener,
      theme,
      EditorView.editorAttributes.of({ "data-testid": "editor" }),
      EditorView.contentAttributes.of({ "aria-label": label, spellcheck: "false", autocapitalize: "off", autocorrect: "off" }),
    ],
  });

  const view = new EditorView({ state, parent });

  return {
    view,
    getText() {
      return view.state.doc.toString();
    },
    setText(text) {
      text = String(text ?? "");
      if (text === view.state.doc.toString()) return;
      view.dispatch({
        changes: { from: 0, to: view.state.doc.length, insert: text },
        selection: { anchor: Math.min(view.state.selection.main.head, text.length) },
        annotations: [programmatic.of(true), isolateHistory.of("full"), Transaction.userEvent.of("set")],
      });
      view.dispatch(setDiagnostics(view.state, []));
    },
    setProblems(list) {
      view.dispatch(setDiagnostics(view.state, toDiagnostics(view.state.doc, list)));
    },
    setSchema(next) {
      view.dispatch({ effects: setSchemaEffect.of(next || null) });
    },
    setReadOnly(flag) {
      view.dispatch({ effects: readOnlyConf.reconfigure(readOnlyExt(flag)) });
    },
    focus() {
      view.focus();
    },
  };
}
