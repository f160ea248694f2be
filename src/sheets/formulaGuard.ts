/**
 * CSV injection (OWASP, "CSV Injection"): a spreadsheet opening a CSV evaluates a text cell that
 * begins with `=`, `+`, `-`, `@`, a tab or a carriage return as a formula. The export writes such
 * a cell with a leading `'`, which spreadsheets show as text; the import takes that `'` off
 * again, so an export imports back exactly as it was. A value that merely begins with `'` is
 * left alone, and one that begins with `'` before such a character gets one more, so the rule
 * can always be undone. Plain numbers (`-5`, `+1.5e3`) are numbers to a spreadsheet, not
 * formulas, and stay as they are.
 */

const FORMULA_START = /^'*[=+\-@\t\r]/
const PLAIN_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i

function needsGuard(text: string): boolean {
  return FORMULA_START.test(text) && !PLAIN_NUMBER.test(text)
}

/** A cell's text as the export writes it. */
export function guardFormula(text: string): string {
  return needsGuard(text) ? `'${text}` : text
}

/** A cell's text as the import reads it: the export's guard taken off. */
export function unguardFormula(text: string): string {
  return text.startsWith("'") && needsGuard(text.slice(1)) ? text.slice(1) : text
}
