/**
 * Reads the strategy's own file, line and column out of V8 error text. Positions are 1-based,
 * as V8 prints them.
 */

export interface SourceLocation {
  line: number;
  column: number;
}

/** V8 (through isolated-vm 7) appends `[file:line:column]` to compile error messages. */
const COMPILE_POSITION = /\s*\[([^\[\]]+):(\d+):(\d+)\]$/;

/** A stack frame ends with `file:line:column`, in parentheses when the frame has a function name. */
const FRAME_POSITION = /(?:\(|\s)([^\s()]+):(\d+):(\d+)\)?$/;

/**
 * Splits a compile error message into its text and the position in `filename`. Returns the
 * message unchanged and no location when the position names another file or is missing.
 */
export function locateCompileError(message: string, filename: string): { text: string; location: SourceLocation | null } {
  const match = COMPILE_POSITION.exec(message);
  if (match === null || match[1] !== filename) return { text: message, location: null };
  return { text: message.slice(0, match.index), location: { line: Number(match[2]), column: Number(match[3]) } };
}

/** Returns the position of the first stack frame in `filename`, the frame that threw or called. */
export function locateInStack(stack: string, filename: string): SourceLocation | null {
  for (const frame of stack.split('\n')) {
    const match = FRAME_POSITION.exec(frame.trim());
    if (match !== null && match[1] === filename) return { line: Number(match[2]), column: Number(match[3]) };
  }
  return null;
}
