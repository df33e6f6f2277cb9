/**
 * Finds module syntax in strategy source: `import` (static, dynamic or `import.meta`), `export`
 * and calls to `require`. Strategies run as classic scripts in an isolate that has no module
 * loader, so such code can only fail; finding it before the run gives a clear compile error.
 *
 * The scanner skips comments, string literals, template literals and regular expression
 * literals, so the words inside them do not count. Property names (`obj.require(...)`,
 * `{ import: 1 }`) do not count either.
 *
 * NOTE: telling a regular expression from a division after `}` or `)` needs a full parser. The
 * scanner treats `/` there as division, so a regex literal in that spot can hide a later word or
 * report a false one; the compile step in V8 still rejects any real `import` or `export`.
 */

export interface ModuleUse {
  keyword: 'import' | 'export' | 'require';
  /** 1-based line and column of the keyword, as in V8 stack traces. */
  line: number;
  column: number;
}

/** Keywords after which `/` starts a regular expression rather than a division. */
const REGEX_AFTER_WORDS: ReadonlySet<string> = new Set([
  'return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield', 'await',
]);

interface Token {
  kind: 'word' | 'punct' | 'value';
  text: string;
  start: number;
}

/** Returns the first module construct in `code`, or null when there is none. */
export function findModuleUse(code: string): ModuleUse | null {
  const tokens = tokenize(code);
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if (token.kind !== 'word') continue;
    if (token.text !== 'import' && token.text !== 'export' && token.text !== 'require') continue;

    const previous = tokens[i - 1];
    const next = tokens[i + 1];
    const isPropertyAccess = previous !== undefined && previous.kind === 'punct' && (previous.text === '.' || previous.text === '?.');
    const isPropertyKey = next !== undefined && next.kind === 'punct' && next.text === ':';
    if (isPropertyAccess || isPropertyKey) continue;
    if (token.text === 'require' && !(next !== undefined && next.kind === 'punct' && next.text === '(')) continue;

    const { line, column } = positionOf(code, token.start);
    return { keyword: token.text, line, column };
  }
  return null;
}

function positionOf(code: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset; i++) {
    if (code.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

function isWordStart(ch: string): boolean {
  return /[A-Za-z_$]/.test(ch) || ch.charCodeAt(0) > 127;
}

function isWordPart(ch: string): boolean {
  return /[A-Za-z0-9_$]/.test(ch) || ch.charCodeAt(0) > 127;
}

function regexAllowedAfter(previous: Token | undefined): boolean {
  if (previous === undefined) return true;
  if (previous.kind === 'value') return false;
  if (previous.kind === 'word') return REGEX_AFTER_WORDS.has(previous.text);
  return previous.text !== ')' && previous.text !== ']' && previous.text !== '}';
}

/**
 * Splits `code` into words, punctuators and opaque values (strings, templates, numbers,
 * regular expressions). Template literals are tracked with a stack so that code inside `${...}`
 * is scanned too.
 */
function tokenize(code: string): Token[] {
  const tokens: Token[] = [];
  // One entry per open `{`: true when that brace opened a template substitution `${`.
  const braceStack: boolean[] = [];
  let i = 0;

  const scanTemplateRest = (): void => {
    // Starts after a backtick or after the `}` that closes a substitution.
    while (i < code.length) {
      const ch = code[i];
      if (ch === '\\') {
        i += 2;
      } else if (ch === '`') {
        i++;
        return;
      } else if (ch === '$' && code[i + 1] === '{') {
        i += 2;
        braceStack.push(true);
        tokens.push({ kind: 'punct', text: '{', start: i - 1 });
        return;
      } else {
        i++;
      }
    }
  };

  while (i < code.length) {
    const ch = code[i];
    const start = i;

    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '/' && code[i + 1] === '/') {
      while (i < code.length && code[i] !== '\n') i++;
    } else if (ch === '/' && code[i + 1] === '*') {
      const end = code.indexOf('*/', i + 2);
      i = end < 0 ? code.length : end + 2;
    } else if (ch === '"' || ch === "'") {
      i++;
      while (i < code.length && code[i] !== ch && code[i] !== '\n') i += code[i] === '\\' ? 2 : 1;
      i++;
      tokens.push({ kind: 'value', text: 'string', start });
    } else if (ch === '`') {
      i++;
      scanTemplateRest();
      tokens.push({ kind: 'value', text: 'template', start });
    } else if (ch === '/' && regexAllowedAfter(tokens[tokens.length - 1])) {
      i = skipRegex(code, i);
      tokens.push({ kind: 'value', text: 'regex', start });
    } else if (isWordStart(ch)) {
      while (i < code.length && isWordPart(code[i])) i++;
      tokens.push({ kind: 'word', text: code.slice(start, i), start });
    } else if (/[0-9]/.test(ch)) {
      while (i < code.length && /[0-9A-Za-z_.]/.test(code[i])) i++;
      tokens.push({ kind: 'value', text: 'number', start });
    } else if (ch === '{') {
      braceStack.push(false);
      tokens.push({ kind: 'punct', text: ch, start });
      i++;
    } else if (ch === '}') {
      i++;
      if (braceStack.pop() === true) {
        scanTemplateRest();
        tokens.push({ kind: 'value', text: 'template', start });
      } else {
        tokens.push({ kind: 'punct', text: ch, start });
      }
    } else if (ch === '.' && code[i + 1] === '.' && code[i + 2] === '.') {
      i += 3;
      tokens.push({ kind: 'punct', text: '...', start });
    } else if (ch === '?' && code[i + 1] === '.' && !/[0-9]/.test(code[i + 2] ?? '')) {
      i += 2;
      tokens.push({ kind: 'punct', text: '?.', start });
    } else {
      i++;
      tokens.push({ kind: 'punct', text: ch, start });
    }
  }
  return tokens;
}

/** Returns the offset just past the regular expression literal that starts at `start`. */
function skipRegex(code: string, start: number): number {
  let i = start + 1;
  let inClass = false;
  while (i < code.length && code[i] !== '\n') {
    const ch = code[i];
    if (ch === '\\') {
      i += 2;
      continue;
    }
    if (ch === '[') inClass = true;
    else if (ch === ']') inClass = false;
    else if (ch === '/' && !inClass) break;
    i++;
  }
  i++;
  while (i < code.length && /[a-z]/.test(code[i])) i++;
  return i;
}
