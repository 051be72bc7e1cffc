// The threadline web chat: a sidebar of the caller's conversations and one open
// conversation, all through the server's /v1 API (see api.js).
//
// Design: the server is the only source of truth. The page keeps what it shows (the list,
// the open conversation) in `state` and reloads from the API after every change, so a
// conversation continued from the terminal or another tab shows up as it is. A streamed
// answer is drawn as it arrives and then replaced by the stored items, so what remains on
// screen (e.g. an answer marked "interrupted" after Stop) is what the server kept.
//
// Safety: model output and stored text reach the DOM only as text nodes (textContent or
// markdown.js, which builds nodes and never parses HTML); the page uses no innerHTML.

import { ApiError, call, forgetKey, getKey, setKey, streamResponse } from "./api.js";
import { renderMarkdown } from "./markdown.js";

const $ = (id) => document.getElementById(id);
const ui = {
  app: $("app"), sidebar: $("sidebar"), newChat: $("new-chat"), closeSidebar: $("close-sidebar"),
  openSidebar: $("open-sidebar"), scrim: $("scrim"), searchForm: $("search-form"),
  search: $("search"), list: $("conversations"), empty: $("no-conversations"), more: $("more"),
  forget: $("forget-key"), title: $("title"), model: $("model"), banner: $("banner"),
  bannerText: $("banner-text"), bannerClose: $("banner-close"), messages: $("messages"),
  welcome: $("welcome"), composer: $("composer"), input: $("input"), send: $("send"),
  stop: $("stop"), keyOverlay: $("key-overlay"), keyForm: $("key-form"),
  keyMessage: $("key-message"), keyInput: $("key-input"),
};

const MODEL_STORAGE = "threadline.model";
const PAGE = 50;
const TITLE_LENGTH = 50;

const state = {
  conversations: [],
  nextCursor: null,
  query: "",
  current: null,     // the open conversation object; null for a new chat
  streaming: null,   // {controller} while an answer streams
  listCall: 0,       // numbers calls, so a slow answer cannot overwrite a newer one
  openCall: 0,
};

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
const path = (id, tail = "") => `/v1/conversations/${encodeURIComponent(id)}${tail}`;

function el(tag, { className, text, label, type } = {}) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  if (label) {
    node.setAttribute("aria-label", label);
    node.title = label;
  }
  if (type) node.type = type;
  return node;
}

// Icons as SVG built node by node (emoji and rare symbols are missing from many fonts).
const SVG = "http://www.w3.org/2000/svg";
const ICONS = {
  rename: [["path", { d: "M4 20h4L19 9l-4-4L4 16z" }], ["path", { d: "M13 7l4 4" }]],
  fork: [["circle", { cx: 6, cy: 5, r: 2.2 }], ["circle", { cx: 6, cy: 19, r: 2.2 }],
    ["circle", { cx: 18, cy: 5, r: 2.2 }], ["path", { d: "M6 7.2v9.6M18 7.2c0 6-12 3.5-12 9.6" }]],
  delete: [["path", { d: "M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3" }]],
};

function icon(name) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "svg-icon");
  for (const [tag, attributes] of ICONS[name]) {
    const shape = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attributes)) shape.setAttribute(key, String(value));
    svg.appendChild(shape);
  }
  return svg;
}

function iconButton(name, label, className = "icon") {
  const button = el("button", { className, type: "button", label });
  button.appendChild(icon(name));
  return button;
}

// ---- errors, the banner, the key prompt --------------------------------------------

function showBanner(message) {
  ui.bannerText.textContent = message;
  ui.banner.hidden = false;
}

function hideBanner() {
  ui.banner.hidden = true;
  ui.bannerText.textContent = "";
}

function showError(error) {
  if (!error || error.name === "AbortError") return;
  if (error instanceof ApiError && error.status === 401) {
    askForKey(error.message);
    return;
  }
  showBanner(error instanceof ApiError ? error.message : `Something went wrong: ${error.message}`);
  if (!(error instanceof ApiError)) console.error(error);
}

function askForKey(message) {
  const hadKey = Boolean(getKey());
  ui.keyMessage.textContent = hadKey
    ? `The server refused the saved key: ${message}`
    : "This server needs an API key (threadline keys create USER).";
  ui.keyOverlay.hidden = false;
  ui.app.inert = true;
  ui.keyInput.value = "";
  ui.keyInput.focus();
}

ui.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const key = ui.keyInput.value.trim();
  if (!key) return;
  setKey(key);
  ui.keyInput.value = "";
  ui.keyOverlay.hidden = true;
  ui.app.inert = false;
  hideBanner();
  start();
  ui.input.focus();
});

ui.forget.addEventListener("click", () => {
  forgetKey();
  state.current = null;
  state.conversations = [];
  renderSidebar();
  showConversation(null, []);
  start();
});

function updateKeyControls() {
  ui.forget.hidden = !getKey();
}

ui.bannerClose.addEventListener("click", () => {
  hideBanner();
  ui.input.focus();
});

// ---- models --------------------------------------------------------------------------

async function loadModels() {
  const answer = await call("GET", "/v1/models");
  const ids = (answer?.data ?? []).map((model) => model.id);
  const wanted = localStorage.getItem(MODEL_STORAGE);
  ui.model.replaceChildren(...ids.map((id) => el("option", { text: id })));
  ui.model.value = ids.includes(wanted) ? wanted : (ids[0] ?? "");
}

ui.model.addEventListener("change", () => localStorage.setItem(MODEL_STORAGE, ui.model.value));

// ---- the sidebar -----------------------------------------------------------------------

function firstWords(text, length = TITLE_LENGTH) {
  const flat = String(text ?? "").replace(/\s+/g, " ").trim();
  if (flat.length <= length) return flat;
  const cut = flat.slice(0, length);
  const space = cut.lastIndexOf(" ");
  return `${space > length / 2 ? cut.slice(0, space) : cut}\u2026`;
}

function label(conversation) {
  return (conversation.title ?? "").trim() || firstWords(conversation.snippet) || "Untitled";
}

async function loadConversations({ more = false } = {}) {
  const number = ++state.listCall;
  const params = new URLSearchParams({ limit: String(PAGE) });
  if (state.query) params.set("q", state.query);
  if (more && state.nextCursor) params.set("after", state.nextCursor);
  const answer = await call("GET", `/v1/conversations?${params}`);
  if (number !== state.listCall) return;
  const data = answer?.data ?? [];
  state.conversations = more ? [...state.conversations, ...data] : data;
  state.nextCursor = answer?.has_more ? (answer.next_cursor ?? answer.last_id ?? null) : null;
  renderSidebar();
}

function renderSidebar() {
  ui.list.replaceChildren(...state.conversations.map(conversationRow));
  ui.empty.hidden = state.conversations.length > 0;
  ui.empty.textContent = state.query ? "Nothing found." : "No conversations yet.";
  ui.more.hidden = !state.nextCursor;
}

function conversationRow(conversation) {
  const row = el("li", { className: "conv" });
  row.dataset.id = conversation.id;
  const isCurrent = state.current?.id === conversation.id;
  if (isCurrent) row.classList.add("current");
  const name = label(conversation);
  const open = el("button", { className: "conv-open", type: "button" });
  if (isCurrent) open.setAttribute("aria-current", "true");
  open.append(el("span", { className: "conv-title", text: name }));
  if (conversation.snippet) {
    open.append(el("span", { className: "conv-snippet", text: conversation.snippet }));
  }
  open.addEventListener("click", () => openConversation(conversation.id));
  const actions = el("div", { className: "conv-actions" });
  const rename = iconButton("rename", `Rename conversation ${name}`);
  rename.addEventListener("click", () => startRename(row, conversation));
  const fork = iconButton("fork", `Fork conversation ${name}`);
  fork.addEventListener("click", () => forkConversation(conversation));
  const remove = iconButton("delete", `Delete conversation ${name}`, "icon danger");
  remove.addEventListener("click", () => confirmDelete(row, conversation));
  actions.append(rename, fork, remove);
  row.append(open, actions);
  return row;
}

function startRename(row, conversation) {
  const form = el("form", { className: "rename" });
  const input = el("input", { label: "New title" });
  input.value = conversation.title ?? "";
  input.maxLength = 512;
  const save = el("button", { className: "icon", type: "submit", text: "\u2713", label: "Save title" });
  const cancel = el("button", { className: "icon", type: "button", text: "\u2715", label: "Cancel rename" });
  const done = () => { renderSidebar(); focusRow(conversation.id); };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const title = input.value.trim();
    try {
      const updated = await call("POST", path(conversation.id), { title: title || null });
      if (state.current?.id === conversation.id) setCurrent({ ...state.current, ...updated });
      await loadConversations();
    } catch (error) {
      showError(error);
    }
    focusRow(conversation.id);
  });
  cancel.addEventListener("click", done);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      done();
    }
  });
  form.append(input, save, cancel);
  row.replaceChildren(form);
  input.focus();
  input.select();
}

function confirmDelete(row, conversation) {
  const box = el("div", { className: "confirm", text: "Delete this conversation? " });
  box.setAttribute("role", "group");
  const yes = el("button", { className: "danger", type: "button", text: "Delete",
    label: "Confirm delete" });
  const no = el("button", { type: "button", text: "Cancel", label: "Cancel delete" });
  yes.addEventListener("click", async () => {
    try {
      await call("DELETE", path(conversation.id));
      if (state.current?.id === conversation.id) newChat();
      await loadConversations();
    } catch (error) {
      showError(error);
    }
    ui.input.focus();
  });
  no.addEventListener("click", () => { renderSidebar(); focusRow(conversation.id); });
  box.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      renderSidebar();
      focusRow(conversation.id);
    }
  });
  box.append(yes, no);
  row.replaceChildren(box);
  no.focus();
}

async function forkConversation(conversation) {
  try {
    const copy = await call("POST", path(conversation.id, "/fork"), {});
    await openConversation(copy.id);
    await loadConversations();
  } catch (error) {
    showError(error);
  }
}

function focusRow(id) {
  const row = [...ui.list.children].find((li) => li.dataset.id === id);
  row?.querySelector(".conv-open")?.focus();
}

let searchTimer = 0;
ui.search.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, 250);
});
ui.search.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && ui.search.value) {
    event.stopPropagation();
    ui.search.value = "";
    runSearch();
  }
});
ui.searchForm.addEventListener("submit", (event) => {
  event.preventDefault();
  clearTimeout(searchTimer);
  runSearch();
});

function runSearch() {
  state.query = ui.search.value.trim();
  state.nextCursor = null;
  loadConversations().catch(showError);
}

ui.more.addEventListener("click", () => loadConversations({ more: true }).catch(showError));

// ---- narrow screens: the sidebar as a drawer -----------------------------------------

function setSidebar(open) {
  const wasOpen = ui.app.classList.contains("sidebar-open");
  ui.app.classList.toggle("sidebar-open", open);
  ui.openSidebar.setAttribute("aria-expanded", String(open));
  ui.scrim.hidden = !open;
  if (open) ui.search.focus();
  else if (wasOpen && ui.sidebar.contains(document.activeElement)) ui.openSidebar.focus();
}

ui.openSidebar.addEventListener("click", () => setSidebar(true));
ui.closeSidebar.addEventListener("click", () => setSidebar(false));
ui.scrim.addEventListener("click", () => setSidebar(false));

// ---- the open conversation ---------------------------------------------------------------

function setCurrent(conversation) {
  state.current = conversation;
  ui.title.textContent = conversation ? label(conversation) : "New chat";
  document.title = conversation ? `${label(conversation)} \u00B7 threadline` : "threadline";
  const hash = conversation ? `#${encodeURIComponent(conversation.id)}` : "";
  if (location.hash !== hash) history.replaceState(null, "", `${location.pathname}${location.search}${hash}`);
  for (const row of ui.list.children) {
    const isCurrent = row.dataset.id === conversation?.id;
    row.classList.toggle("current", isCurrent);
    const open = row.querySelector(".conv-open");
    if (open && isCurrent) open.setAttribute("aria-current", "true");
    else open?.removeAttribute("aria-current");
  }
}

function newChat() {
  stopAnswer();
  state.openCall++;
  setCurrent(null);
  showConversation(null, []);
  setSidebar(false);
  ui.input.focus();
}

ui.newChat.addEventListener("click", newChat);

async function loadItems(id) {
  const items = [];
  let after = null;
  for (let page = 0; page < 100; page++) {
    const params = new URLSearchParams({ order: "asc", limit: "100" });
    if (after) params.set("after", after);
    const answer = await call("GET", `${path(id, "/items")}?${params}`);
    const data = answer?.data ?? [];
    items.push(...data);
    if (!answer?.has_more || !data.length) break;
    after = answer.last_id ?? data[data.length - 1].id;
  }
  return items;
}

async function openConversation(id, { focus = true } = {}) {
  stopAnswer();
  const number = ++state.openCall;
  try {
    const [conversation, items] = await Promise.all([call("GET", path(id)), loadItems(id)]);
    if (number !== state.openCall) return;
    setCurrent(conversation);
    showConversation(conversation, items);
    setSidebar(false);
    if (focus) ui.input.focus();
  } catch (error) {
    if (number !== state.openCall) return;
    if (error instanceof ApiError && error.status === 404) {
      setCurrent(null);
      showConversation(null, []);
    }
    showError(error);
  }
}

function showConversation(conversation, items) {
  ui.messages.replaceChildren();
  if (!items.length) ui.messages.append(ui.welcome);
  for (const item of items) ui.messages.append(renderItem(item));
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function itemText(item) {
  const content = item.content;
  if (typeof content === "string") return content;
  return (content ?? []).map((part) => {
    if (typeof part?.text === "string") return part.text;
    if (part?.type === "refusal") return part.refusal ?? "";
    if (part?.type === "input_image") return "[image]";
    if (part?.type === "input_file") return `[file ${part.filename ?? ""}]`.trim();
    return part?.type ? `[${part.type}]` : "";
  }).join("");
}

const ROLE_NAMES = { user: "You", assistant: "Assistant", system: "System", developer: "System" };

function messageElement(role, { interrupted = false } = {}) {
  const box = el("article", { className: `msg ${role}` });
  const head = el("div", { className: "msg-head", text: ROLE_NAMES[role] ?? role });
  const body = el("div", { className: role === "assistant" ? "msg-body md" : "msg-body plain" });
  box.append(head, body);
  if (interrupted) markInterrupted(box);
  return { box, body };
}

function markInterrupted(box) {
  if (box.querySelector(".badge")) return;
  box.classList.add("interrupted");
  box.querySelector(".msg-head").append(el("span", { className: "badge", text: "interrupted" }));
}

function fillBody(body, role, text) {
  if (role === "assistant") body.replaceChildren(renderMarkdown(text));
  else body.textContent = text;
}

function renderItem(item) {
  if (item.type === "message" || (!item.type && item.role)) {
    const role = item.role ?? "assistant";
    const { box, body } = messageElement(role, { interrupted: item.status === "incomplete" });
    box.dataset.id = item.id ?? "";
    fillBody(body, role, itemText(item));
    return box;
  }
  const details = el("details", { className: "tool" });
  let summary;
  let detail;
  if (item.type === "function_call") {
    summary = `\u2699 ${item.name ?? "tool"}(${firstWords(item.arguments ?? "", 60)})`;
    detail = item.arguments ?? "";
  } else if (item.type === "function_call_output") {
    const output = typeof item.output === "string" ? item.output : JSON.stringify(item.output);
    summary = `\u21B3 ${firstWords(output, 80)}`;
    detail = output;
  } else {
    summary = item.type ?? "item";
    detail = JSON.stringify(item, null, 2);
  }
  details.append(el("summary", { text: summary }), el("pre", { text: detail }));
  return details;
}

function nearBottom() {
  const m = ui.messages;
  return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
}

// ---- sending and streaming -----------------------------------------------------------------

function setStreaming(on) {
  ui.send.hidden = on;
  ui.stop.hidden = !on;
  ui.app.classList.toggle("busy", on);
  ui.model.disabled = on;
  if (!on && document.activeElement === document.body) ui.input.focus();
}

function stopAnswer() {
  state.streaming?.controller.abort();
}

ui.stop.addEventListener("click", () => {
  stopAnswer();
  ui.input.focus();
});

async function send() {
  const text = ui.input.value;
  if (!text.trim() || state.streaming) return;
  hideBanner();
  const controller = new AbortController();
  state.streaming = { controller };
  setStreaming(true);
  ui.input.value = "";
  autosize();
  let conversation = state.current;
  let accepted = false;
  let stopped = false;
  let question = null;
  let answer = null;
  try {
    if (!conversation) {
      conversation = await call("POST", "/v1/conversations", {}, { signal: controller.signal });
      setCurrent(conversation);
      state.openCall++;   // a list click still loading must not replace the new chat
    }
    ui.welcome.remove();
    question = messageElement("user");
    fillBody(question.body, "user", text);
    answer = messageElement("assistant");
    answer.box.classList.add("streaming");
    answer.box.setAttribute("aria-busy", "true");   // screen readers read it once, complete
    ui.messages.append(question.box, answer.box);
    ui.messages.scrollTop = ui.messages.scrollHeight;
    let answerText = "";
    let failure = null;
    let frame = 0;
    const draw = () => {
      frame = 0;
      const follow = nearBottom();
      fillBody(answer.body, "assistant", answerText);
      if (follow) ui.messages.scrollTop = ui.messages.scrollHeight;
    };
    await streamResponse({ model: ui.model.value || undefined, input: text,
      conversation: conversation.id }, (type, data) => {
      accepted = true;
      if (type === "response.output_text.delta") {
        answerText += data.delta ?? "";
        if (!frame) frame = requestAnimationFrame(draw);
      } else if (type === "response.failed") {
        failure = data.response?.error?.message ?? "The model failed to answer.";
      } else if (type === "error") {
        failure = data.message ?? data.error?.message ?? "The model failed to answer.";
      } else if (type === "response.incomplete") {
        markInterrupted(answer.box);
      }
    }, { signal: controller.signal });
    cancelAnimationFrame(frame);
    draw();
    if (failure) throw new ApiError(502, failure);
  } catch (error) {
    if (error.name === "AbortError") {
      stopped = true;
      if (answer) markInterrupted(answer.box);
    } else {
      showError(error);
    }
    if (!accepted) {   // nothing reached the model: give the text back to edit or resend
      question?.box.remove();
      answer?.box.remove();
      if (!ui.input.value) ui.input.value = text;
      autosize();
    }
  } finally {
    answer?.box.classList.remove("streaming");
    answer?.box.removeAttribute("aria-busy");
    state.streaming = null;
    setStreaming(false);
  }
  if (conversation && accepted) await afterAnswer(conversation, text, stopped);
  else if (conversation) loadConversations().catch(showError);
}

async function afterAnswer(conversation, question, stopped) {
  try {
    await ensureTitle(conversation, question);
    if (state.current?.id === conversation.id) {
      const items = stopped ? await storedAfterStop(conversation.id, question)
        : await loadItems(conversation.id);
      if (state.current?.id === conversation.id && !state.streaming) {
        showConversation(state.current, items);
      }
    }
    await loadConversations();
  } catch (error) {
    showError(error);
  }
}

/** The items once the server has stored the stopped answer (it does so when it notices). */
async function storedAfterStop(id, question) {
  let items = [];
  for (let attempt = 0; attempt < 15; attempt++) {
    items = await loadItems(id);
    const lastQuestion = items.findLastIndex((item) => item.role === "user");
    if (lastQuestion >= 0 && itemText(items[lastQuestion]) === question
        && items.slice(lastQuestion + 1).some((item) => item.role === "assistant")) {
      return items;
    }
    await sleep(200);
  }
  return items;
}

async function ensureTitle(conversation, question) {
  if ((conversation.title ?? "").trim()) return;
  let fresh = await call("GET", path(conversation.id));
  if (!(fresh.title ?? "").trim()) {
    const title = firstWords(question);
    if (title) fresh = await call("POST", path(conversation.id), { title });
  }
  if (state.current?.id === conversation.id) setCurrent({ ...state.current, ...fresh });
}

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});

ui.input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});

function autosize() {
  ui.input.style.height = "auto";
  ui.input.style.height = `${Math.min(ui.input.scrollHeight, 200)}px`;
}

ui.input.addEventListener("input", autosize);

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || !ui.keyOverlay.hidden) return;
  if (state.streaming) {
    event.preventDefault();
    stopAnswer();
    ui.input.focus();
  } else if (ui.app.classList.contains("sidebar-open")) {
    setSidebar(false);
  } else if (!ui.banner.hidden) {
    hideBanner();
  }
});

window.addEventListener("hashchange", () => {
  const id = decodeURIComponent(location.hash.slice(1));
  if (id && id !== state.current?.id) openConversation(id);
  else if (!id && state.current) newChat();
});

// ---- start -----------------------------------------------------------------------------------

async function start() {
  updateKeyControls();
  try {
    await Promise.all([loadModels(), loadConversations()]);
    const id = decodeURIComponent(location.hash.slice(1));
    if (id && id !== state.current?.id) await openConversation(id, { focus: false });
    updateKeyControls();
  } catch (error) {
    showError(error);
  }
}

ui.app.dataset.ready = "true";
start().then(() => { ui.app.dataset.loaded = "true"; });
ui.input.focus();
