/**
 * The one way the UI talks to the server: `api.get/post/put/del("/token/", …)` → `data`.
 *
 * Every answer of `/api` is One API's envelope `{success, message, data}`:
 * - `success: false` (HTTP 200, One API's contract) → a toast with `message`, then `ApiError`
 *   is thrown (pass `{ silent: true }` to handle the message yourself, without the toast);
 * - HTTP 401 → the auth context forgets the user, and the route guard sends them to /login;
 * - HTTP 429 (rate limit) and network failures → a toast, then `ApiError`.
 * Paths are relative to `/api`. The session is the HttpOnly cookie; nothing is stored here.
 */
import { translate } from "@/i18n";

export type Query = Record<string, string | number | boolean | null | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** No toast on failure: the caller shows the error (the ApiError is still thrown). */
  silent?: boolean;
  signal?: AbortSignal;
}

/** The whole answer, for the few routes whose fields sit beside `data` (channel test, balance). */
export interface Envelope<T> {
  success: boolean;
  message: string;
  data: T;
  [extra: string]: unknown;
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

interface Handlers {
  onError: (message: string) => void;
  onUnauthorized: () => void;
}

const handlers: Handlers = { onError: () => undefined, onUnauthorized: () => undefined };

/** Installed once by the app shell (toasts) and the auth context (401). */
export function setApiHandlers(next: Partial<Handlers>): void {
  Object.assign(handlers, next);
}

export function apiUrl(path: string, query?: Query): string {
  const url = new URL(`/api${path.startsWith("/") ? path : `/${path}`}`, window.location.origin);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") {
      url.searchParams.set(key, String(value));
    }
  }
  return url.pathname + url.search;
}

async function send<T>(method: string, path: string, options: RequestOptions): Promise<Envelope<T>> {
  const fail = (message: string, status: number): never => {
    if (!options.silent) handlers.onError(message);
    throw new ApiError(message, status);
  };
  let response: Response;
  try {
    response = await fetch(apiUrl(path, options.query), {
      method,
      credentials: "same-origin",
      headers: options.body === undefined ? {} : { "Content-Type": "application/json" },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    return fail(translate("error.network"), 0);
  }
  let envelope: Envelope<T> | null = null;
  try {
    envelope = (await response.json()) as Envelope<T>;
  } catch {
    envelope = null;
  }
  if (response.status === 401) {
    handlers.onUnauthorized();
    return fail(envelope?.message || translate("error.unauthorized"), 401);
  }
  if (envelope === null || typeof envelope !== "object") {
    return fail(translate("error.http", { status: response.status }), response.status);
  }
  if (!envelope.success) {
    return fail(envelope.message || translate("error.http", { status: response.status }), response.status);
  }
  return envelope;
}

async function data<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  return (await send<T>(method, path, options)).data;
}

export const api = {
  get: <T>(path: string, options?: RequestOptions) => data<T>("GET", path, options),
  post: <T>(path: string, body?: unknown, options?: RequestOptions) =>
    data<T>("POST", path, { ...options, body }),
  put: <T>(path: string, body?: unknown, options?: RequestOptions) =>
    data<T>("PUT", path, { ...options, body }),
  del: <T>(path: string, options?: RequestOptions) => data<T>("DELETE", path, options),
  /** The whole envelope, for `message` on success or fields beside `data`. */
  envelope: <T>(method: "GET" | "POST" | "PUT" | "DELETE", path: string, options: RequestOptions = {}) =>
    send<T>(method, path, options),
};
