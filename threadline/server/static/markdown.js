// A small Markdown renderer for model answers that cannot inject markup.
//
// It never parses HTML: it builds DOM nodes, and every piece of the source text enters
// the page through document.createTextNode (or textContent), which the browser treats as
// text whatever it contains -- so "<script>" or "<img onerror=...>" shows up literally.
// That is the "escape everything first" rule in its strongest form: nothing is ever
// unescaped. Links are made only for http(s) and mailto URLs, and open in a new tab
// without a referrer or an opener.
//
// Supported: fenced code blocks (``` or ~~~, also unclosed while streaming), inline code,
// **bold**, *italic* / _italic_, ~~strike~~, # headings, - / * / 1. lists (one level, with
// indented continuation lines), > quotes, --- rules, paragraphs (single newlines kept as
// line breaks), [links](url) and bare URLs.

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const BULLET = /^ {0,3}([-*+])\s+(.*)$/;
const ORDERED = /^ {0,3}(\d{1,9})[.)]\s+(.*)$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;
const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
const BLANK = /^\s*$/;

// The earliest match wins; at one position the alternatives are tried in this order.
const INLINE = new RegExp([
  /(`+)([\s\S]*?[^`])\1(?!`)/.source,                       // 1,2 code span
  /\[([^\]\n]+)\]\(\s*<?([^()\s<>]+)>?\s*\)/.source,         // 3,4 [text](url)
  /\*\*(?=\S)([\s\S]*?\S)\*\*/.source,                      // 5 bold
  /__(?=\S)([\s\S]*?\S)__(?!\w)/.source,                    // 6 bold
  /\*(?=[^\s*])([\s\S]*?[^\s*])\*/.source,                  // 7 italic
  /(?<![\w])_(?=[^\s_])([\s\S]*?[^\s_])_(?!\w)/.source,     // 8 italic
  /~~(?=\S)([\s\S]*?\S)~~/.source,                          // 9 strike
  /<((?:https?:\/\/|mailto:)[^\s<>"]+)>/.source,            // 10 <autolink>
  /((?:https?:\/\/|mailto:)[^\s<>"]*[^\s<>".,;:!?'")\]}*_])/.source, // 11 bare URL
].join("|"));

/** The URL as a safe link target, or null: only http(s) and mailto, parsed absolutely. */
export function safeUrl(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  return ["http:", "https:", "mailto:"].includes(url.protocol) ? url.href : null;
}

function el(tag, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}

function link(href, children) {
  const a = el("a");
  a.href = href;
  a.rel = "noopener noreferrer";
  a.target = "_blank";
  children(a);
  return a;
}

/** Appends the inline Markdown of `text` to `parent` as DOM nodes. */
export function renderInline(text, parent, depth = 0) {
  let rest = text;
  while (rest) {
    const m = depth > 8 ? null : INLINE.exec(rest);
    if (!m) {
      appendText(parent, rest);
      return;
    }
    if (m.index > 0) appendText(parent, rest.slice(0, m.index));
    rest = rest.slice(m.index + m[0].length);
    if (m[2] !== undefined) {
      const code = el("code");
      code.textContent = m[2].length > 2 && m[2].startsWith(" ") && m[2].endsWith(" ")
        ? m[2].slice(1, -1) : m[2];
      parent.appendChild(code);
    } else if (m[3] !== undefined) {
      const href = safeUrl(m[4]);
      if (href) {
        parent.appendChild(link(href, (a) => renderInline(m[3], a, depth + 1)));
      } else {
        appendText(parent, m[0]);   // an unsafe or relative target stays plain text
      }
    } else if (m[5] !== undefined || m[6] !== undefined) {
      const strong = el("strong");
      renderInline(m[5] ?? m[6], strong, depth + 1);
      parent.appendChild(strong);
    } else if (m[7] !== undefined || m[8] !== undefined) {
      const em = el("em");
      renderInline(m[7] ?? m[8], em, depth + 1);
      parent.appendChild(em);
    } else if (m[9] !== undefined) {
      const del = el("del");
      renderInline(m[9], del, depth + 1);
      parent.appendChild(del);
    } else {
      const url = m[10] ?? m[11];
      const href = safeUrl(url);
      if (href) parent.appendChild(link(href, (a) => { a.textContent = url; }));
      else appendText(parent, m[0]);
    }
  }
}

function appendText(parent, text) {
  parent.appendChild(document.createTextNode(text));
}

/** Inline text whose single newlines become <br>s (as chat answers mean them). */
function renderLines(lines, parent) {
  lines.forEach((line, index) => {
    if (index) parent.appendChild(el("br"));
    renderInline(line, parent);
  });
}

/** A DocumentFragment holding the rendered Markdown of `source`. */
export function renderMarkdown(source) {
  const fragment = document.createDocumentFragment();
  renderBlocks(String(source ?? "").replace(/\r\n?/g, "\n").split("\n"), fragment, 0);
  return fragment;
}

function renderBlocks(lines, parent, depth) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if (BLANK.test(line)) {
      i += 1;
    } else if ((m = FENCE.exec(line))) {
      const fence = m[1];
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trim().startsWith(fence)) {
        body.push(lines[i]);
        i += 1;
      }
      i += 1;   // the closing fence (or the end, while an answer is still streaming)
      const pre = el("pre");
      const code = el("code");
      const language = m[2].replace(/[^\w+#.-]/g, "");
      if (language) {
        code.className = `language-${language}`;
        pre.dataset.language = language;
      }
      code.textContent = body.join("\n");
      pre.appendChild(code);
      parent.appendChild(pre);
    } else if ((m = HEADING.exec(line))) {
      const heading = el(`h${Math.min(m[1].length + 2, 6)}`, "md-heading");
      renderInline(m[2], heading);
      parent.appendChild(heading);
      i += 1;
    } else if (RULE.test(line)) {
      parent.appendChild(el("hr"));
      i += 1;
    } else if (QUOTE.test(line) && depth < 4) {
      const quoted = [];
      while (i < lines.length && (m = QUOTE.exec(lines[i]))) {
        quoted.push(m[1]);
        i += 1;
      }
      const blockquote = el("blockquote");
      renderBlocks(quoted, blockquote, depth + 1);
      parent.appendChild(blockquote);
    } else if (BULLET.test(line) || ORDERED.test(line)) {
      i = renderList(lines, i, parent, depth);
    } else {
      const paragraph = [];
      while (i < lines.length && !BLANK.test(lines[i]) && !startsBlock(lines[i])) {
        paragraph.push(lines[i]);
        i += 1;
      }
      if (!paragraph.length) {   // a line startsBlock() claims but no branch above took
        paragraph.push(lines[i]);
        i += 1;
      }
      const p = el("p");
      renderLines(paragraph, p);
      parent.appendChild(p);
    }
  }
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line)
    || BULLET.test(line) || ORDERED.test(line);
}

const indent = (line) => line.length - line.trimStart().length;

function renderList(lines, start, parent, depth) {
  const ordered = !BULLET.test(lines[start]);
  const pattern = ordered ? ORDERED : BULLET;
  const base = indent(lines[start]);
  const list = el(ordered ? "ol" : "ul");
  const first = ORDERED.exec(lines[start]);
  if (ordered && first && first[1] !== "1") list.start = Number(first[1]);
  const items = [];
  let item = null;
  let i = start;
  while (i < lines.length) {
    const line = lines[i];
    const m = pattern.exec(line);
    if (m && indent(line) <= base + 1) {
      item = { li: list.appendChild(el("li")), lines: [m[2]] };
      items.push(item);
      i += 1;
    } else if (item && !BLANK.test(line) && indent(line) >= base + 2) {
      item.lines.push(line.slice(Math.min(indent(line), base + 2)));   // continuation
      i += 1;
    } else if (item && BLANK.test(line) && i + 1 < lines.length && pattern.test(lines[i + 1])
               && indent(lines[i + 1]) <= base + 1) {
      i += 1;   // a loose list: the blank line between items
    } else {
      break;
    }
  }
  for (const { li, lines: content } of items) {
    const nested = content.slice(1).some((l) => startsBlock(l));
    if (nested && depth < 4) {
      renderInline(content[0], li);
      renderBlocks(content.slice(1), li, depth + 1);
    } else {
      renderLines(content, li);
    }
  }
  parent.appendChild(list);
  return i;
}
