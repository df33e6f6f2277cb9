/**
 * Body schemas of each message kind. A body that does not match its kind's schema is a protocol
 * violation like a bad tag: the envelope is rejected and the channel closed.
 */
import { MessageKind } from './layout';
import { s, type Schema } from './schema';

const METHOD_PATTERN = /^[a-z]+\.[A-Za-z]{1,64}$/;
const ERROR_SCHEMA = s.object({
  code: s.string(64, /^E_[A-Z_]+$/),
  message: s.string(4096),
  details: s.record(s.opaque(), 64),
});

export const BODY_SCHEMAS: Record<MessageKind, Schema> = {
  [MessageKind.Ready]: s.object({ pid: s.integer(1, 2 ** 31) }),
  [MessageKind.Request]: s.object({ id: s.integer(0, Number.MAX_SAFE_INTEGER), method: s.string(80, METHOD_PATTERN), params: s.opaque() }),
  [MessageKind.Response]: s.object({ id: s.integer(0, Number.MAX_SAFE_INTEGER), result: s.opaque() }, ['result']),
  [MessageKind.ErrorResponse]: s.object({ id: s.integer(0, Number.MAX_SAFE_INTEGER), error: ERROR_SCHEMA }),
  [MessageKind.Heartbeat]: s.object({ at: s.integer(0, Number.MAX_SAFE_INTEGER) }),
  [MessageKind.HeartbeatAck]: s.object({ at: s.integer(0, Number.MAX_SAFE_INTEGER) }),
  [MessageKind.SecurityEvent]: s.object({
    type: s.string(64, /^[a-z][a-z0-9_.-]*$/),
    severity: s.literal('info', 'warning', 'critical'),
    details: s.record(s.opaque(), 64),
  }),
  [MessageKind.Shutdown]: s.object({}),
  [MessageKind.Reject]: s.object({ code: s.literal('E_ENVELOPE_REJECTED') }),
};

export interface RequestBody {
  id: number;
  method: string;
  params: unknown;
}
export interface ResponseBody {
  id: number;
  result?: unknown;
}
export interface ErrorResponseBody {
  id: number;
  error: { code: string; message: string; details: Record<string, string | number | boolean> };
}
