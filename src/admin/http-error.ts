// A refusal the admin endpoint answers with an HTTP status and, as JSON, the code and the line.
import { type ErrorCode, TcpoolError } from '../errors.ts';

export class HttpError extends TcpoolError {
  readonly status: number;
  constructor(status: number, code: ErrorCode, message: string) {
    super(code, message);
    this.status = status;
  }
}
