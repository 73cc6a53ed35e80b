import type { IncomingMessage } from 'node:http';

/** The path of a request's URL, without its query: what every route of the status server matches on. */
export function requestPath(request: IncomingMessage): string {
  return (request.url ?? '/').replace(/\?.*/s, '');
}
