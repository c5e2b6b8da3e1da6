import type { Duplex } from 'node:stream';

/** What Node's HTTP parser could not read, as the status and words its own answer would use. */
function statusOf(code: string | undefined): { status: number; title: string; detail: string } {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        title: 'Request header fields too large',
        detail:
          'The request line and headers exceed the server’s limit (16 KiB by default): shorten the URL or the headers.',
      };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return {
        status: 413,
        title: 'Payload too large',
        detail: 'The chunk extensions of the body are too large.',
      };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, title: 'Request timeout', detail: 'The request did not arrive in time.' };
    default:
      return { status: 400, title: 'Bad request', detail: 'The request is not well-formed HTTP.' };
  }
}

const problemType: Record<number, string> = {
  400: 'bad_request',
  408: 'request_timeout',
  413: 'payload_too_large',
  431: 'header_fields_too_large',
};

/**
 * A `clientError` listener for the HTTP server. Node answers a request it cannot parse (a
 * 20,000-character URL, a broken request line) itself, before any handler runs, with a bare
 * status line; this answers the same status as `application/problem+json` like every other
 * error of the API, then closes the connection, which the parser can no longer follow.
 * @example server.on('clientError', answerClientError);
 */
export function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  // A reset or closed connection has no one left to answer.
  // A response already under way (keep-alive) cannot be followed by another: Node's own handler drops these too.
  const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
  if (error.code === 'ECONNRESET' || !socket.writable || inFlight) {
    socket.destroy();
    return;
  }
  const { status, title, detail } = statusOf(error.code);
  const body = JSON.stringify({ type: `urn:devart:problem:${problemType[status]}`, title, status, detail });
  socket.end(
    `HTTP/1.1 ${status} ${title}\r\n` +
      'Content-Type: application/problem+json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}
