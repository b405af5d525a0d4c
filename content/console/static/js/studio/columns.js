// The server counts a problem's column in Unicode code points; the editor counts UTF-16 code units. They
// differ after a character outside the Basic Multilingual Plane (an emoji, a rare CJK ideograph), which
// takes two code units: convert before placing an underline or the cursor.

/**
 * The 1-based column in UTF-16 code units of the 1-based code-point column `column` on a line whose text
 * is `lineText`. A column past the line's end stays past it by as much.
 */
export function utf16Column(lineText, column) {
  const wanted = Math.max(1, Math.trunc(Number(column)) || 1);
  let units = 0;
  let point = 1;
  for (const character of String(lineText ?? "")) {
    if (point >= wanted) return units + 1;
    units += character.length;
    point += 1;
  }
  return units + 1 + (wanted - point);
}

/** The problems with their columns in UTF-16 code units; `lineText(n)` gives line n's text (or null). */
export function inUtf16(problems, lineText) {
  return problems.map((problem) => {
    const text = lineText(problem.line);
    return text == null ? problem : { ...problem, column: utf16Column(text, problem.column) };
  });
}
