// The page's client of the /v1 API: JSON calls, the streamed Responses API, the API key.
//
// Every call sends the key kept in localStorage (if any) as a Bearer token. A failed call
// throws ApiError carrying the HTTP status and the OpenAI-shaped message
// ({"error": {"message"}}), so the page decides what a 401 means (ask for a key) and
// shows everything else in its banner.

const KEY_STORAGE = "threadline.apiKey";

export class ApiError extends Error {
  constructor(status, message, code = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

export function getKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";   // storage disabled: the page still works on a server without keys
  }
}

export function setKey(key) {
  localStorage.setItem(KEY_STORAGE, key);
}

export function forgetKey() {
  localStorage.removeItem(KEY_STORAGE);
}

function headers(extra = {}) {
  const key = getKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : { ...extra };
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`.trim();
  let code = null;
  try {
    const body = await response.json();
    if (body && body.error) {
      message = body.error.message || message;
      code = body.error.code || null;
    } else if (body && typeof body.detail === "string") {
      message = body.detail;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message, code);
}

/** A JSON call: `method` on `path` (under the page's origin), the parsed answer or ApiError. */
export async function call(method, path, body = undefined, { signal } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, `The server could not be reached (${error.message}).`);
  }
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** Splits server-sent events out of `buffer`; returns [events, rest still incomplete]. */
export function parseEvents(buffer) {
  const events = [];
  const blocks = buffer.replace(/\r\n?/g, "\n").split("\n\n");
  const rest = blocks.pop();
  for (const block of blocks) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;   // a comment (keep-alive)
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) continue;
    const text = data.join("\n");
    if (text === "[DONE]") continue;
    let payload;
    try {
      payload = JSON.parse(text);
    } catch {
      payload = { data: text };
    }
    events.push({ type: payload.type || name, data: payload });
  }
  return [events, rest];
}

/**
 * POST /v1/responses with stream: true; calls onEvent(type, data) per event as it comes.
 * Aborting `signal` stops reading (the server keeps the partial answer as interrupted).
 */
export async function streamResponse(body, onEvent, { signal } = {}) {
  let response;
  try {
    response = await fetch("/v1/responses", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify({ ...body, stream: true }),
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, `The server could not be reached (${error.message}).`);
  }
  if (!response.ok) throw await failure(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    buffer += decoder.decode(value ?? new Uint8Array(), { stream: !done });
    const [events, rest] = parseEvents(done ? `${buffer}\n\n` : buffer);
    buffer = rest;
    for (const event of events) onEvent(event.type, event.data);
    if (done) return;
  }
}
