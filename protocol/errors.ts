// One error hierarchy with stable codes for every part of cloudcons. Foreign errors (ENOENT,
// socket errors, zod issues) are translated where they happen; HTTP status mapping is httpStatus().

export type ErrorCode =
  | 'CC_ERR_BAD_PARAMETER'
  | 'CC_ERR_BAD_FRAME'
  | 'CC_ERR_TOO_LARGE'
  | 'CC_ERR_NOT_FOUND'
  | 'CC_ERR_CONFLICT'
  | 'CC_ERR_UNAUTHORIZED'
  | 'CC_ERR_FORBIDDEN'
  | 'CC_ERR_CONNECTION'
  | 'CC_ERR_CONFIG'
  | 'CC_ERR_STORAGE_FULL'
  | 'CC_ERR_RATE_LIMITED'
  | 'CC_ERR_INTERNAL';

export class CcError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}
export class BadParameter extends CcError { constructor(m: string, o?: { cause?: unknown }) { super('CC_ERR_BAD_PARAMETER', m, o); } }
export class BadFrame extends CcError { constructor(m: string) { super('CC_ERR_BAD_FRAME', m); } }
export class TooLarge extends CcError { constructor(m: string) { super('CC_ERR_TOO_LARGE', m); } }
export class NotFound extends CcError { constructor(m: string) { super('CC_ERR_NOT_FOUND', m); } }
export class Conflict extends CcError { constructor(m: string) { super('CC_ERR_CONFLICT', m); } }
export class Unauthorized extends CcError { constructor(m: string) { super('CC_ERR_UNAUTHORIZED', m); } }
export class Forbidden extends CcError { constructor(m: string) { super('CC_ERR_FORBIDDEN', m); } }
export class ConnectionProblem extends CcError { constructor(m: string, o?: { cause?: unknown }) { super('CC_ERR_CONNECTION', m, o); } }
/** Too many messages, connections or sessions: a limit (named in the message) was reached. */
export class RateLimited extends CcError { constructor(m: string) { super('CC_ERR_RATE_LIMITED', m); } }
/** A disk or bucket refused a write for lack of space: nothing was stored, retry later. */
export class StorageFull extends CcError { constructor(m: string) { super('CC_ERR_STORAGE_FULL', m); } }
export class ConfigError extends CcError {
  readonly problems: string[];
  constructor(file: string, problems: string[]) {
    super('CC_ERR_CONFIG', `invalid config ${file}:\n` + problems.map((p) => `  - ${p}`).join('\n'));
    this.problems = problems;
  }
}

const status: Record<ErrorCode, number> = {
  CC_ERR_BAD_PARAMETER: 400, CC_ERR_BAD_FRAME: 400, CC_ERR_TOO_LARGE: 413, CC_ERR_NOT_FOUND: 404,
  CC_ERR_CONFLICT: 409, CC_ERR_UNAUTHORIZED: 401, CC_ERR_FORBIDDEN: 403, CC_ERR_CONNECTION: 502,
  CC_ERR_CONFIG: 400, CC_ERR_STORAGE_FULL: 507, CC_ERR_RATE_LIMITED: 429, CC_ERR_INTERNAL: 500,
};
export function httpStatus(code: string): number { return status[code as ErrorCode] ?? 500; }
export function errorCode(e: unknown): ErrorCode { return e instanceof CcError ? e.code : 'CC_ERR_INTERNAL'; }
