// jobyard's dashboard: the few things htmx does not do. A job's log is read from its end,
// page by page backwards on demand, and followed live as server-sent events; ANSI colours
// become classes (text is only ever set as text, never as HTML).
"use strict";

const LOG_PAGE = 64 * 1024; // bytes per "load earlier"
const MAX_SHOWN = 2000000; // characters kept on the page; the download has everything

// ANSI SGR sequences to classes -----------------------------------------------------------
class Ansi {
  constructor() { this.reset(); this.pending = ""; }
  reset() { this.fg = null; this.bg = null; this.bold = false; this.dim = false; this.italic = false; this.underline = false; }
  classes() {
    const c = [];
    if (this.fg !== null) c.push("ansi-fg-" + this.fg);
    if (this.bg !== null) c.push("ansi-bg-" + this.bg);
    if (this.bold) c.push("ansi-bold");
    if (this.dim) c.push("ansi-dim");
    if (this.italic) c.push("ansi-italic");
    if (this.underline) c.push("ansi-underline");
    return c.join(" ");
  }
  apply(codes) {
    const list = codes === "" ? [0] : codes.split(";").map((n) => parseInt(n, 10) || 0);
    for (let i = 0; i < list.length; i++) {
      const n = list[i];
      if (n === 0) this.reset();
      else if (n === 1) this.bold = true;
      else if (n === 2) this.dim = true;
      else if (n === 3) this.italic = true;
      else if (n === 4) this.underline = true;
      else if (n === 22) { this.bold = false; this.dim = false; }
      else if (n === 23) this.italic = false;
      else if (n === 24) this.underline = false;
      else if (n >= 30 && n <= 37) this.fg = n - 30;
      else if (n >= 90 && n <= 97) this.fg = n - 90 + 8;
      else if (n === 39) this.fg = null;
      else if (n >= 40 && n <= 47) this.bg = n - 40;
      else if (n === 49) this.bg = null;
      else if ((n === 38 || n === 48) && list[i + 1] === 5) {
        const colour = list[i + 2];
        if (colour < 16) { if (n === 38) this.fg = colour; else this.bg = colour % 8; }
        i += 2;
      } else if ((n === 38 || n === 48) && list[i + 1] === 2) i += 4; // true colour: not shown
    }
  }
  // Nodes for a stretch of text; an escape sequence cut at the end waits for the next one.
  nodes(text, extraClass) {
    text = this.pending + text;
    this.pending = "";
    const cut = text.lastIndexOf("\x1b");
    if (cut !== -1 && !/^\x1b\[[0-9;?]*[@-~]/.test(text.slice(cut)) && text.length - cut < 32) {
      this.pending = text.slice(cut);
      text = text.slice(0, cut);
    }
    const out = [];
    const pattern = /\x1b\[([0-9;?]*)([@-~])|\x1b[()][0-9A-Za-z]|\x1b[=>]/g;
    let last = 0;
    let match;
    const push = (piece) => {
      if (!piece) return;
      const span = document.createElement("span");
      const cls = [this.classes(), extraClass || ""].join(" ").trim();
      if (cls) span.className = cls;
      span.textContent = piece;
      out.push(span);
    };
    while ((match = pattern.exec(text)) !== null) {
      push(text.slice(last, match.index));
      if (match[2] === "m") this.apply(match[1]);
      last = pattern.lastIndex;
    }
    push(text.slice(last));
    return out;
  }
}

// A job's log ----------------------------------------------------------------------------
class LogView {
  constructor(pre) {
    this.pre = pre;
    this.job = pre.dataset.job;
    this.attempt = pre.dataset.attempt;
    this.tail = parseInt(pre.dataset.tail || "65536", 10); // bytes shown at first
    this.start = 0; // the first byte shown
    this.ansi = new Ansi();
    this.shown = 0;
    this.earlier = document.getElementById("log-earlier");
    this.state = document.getElementById("log-state");
    if (this.earlier) this.earlier.addEventListener("click", () => this.loadEarlier());
  }
  url(path, params) {
    const query = new URLSearchParams(params);
    return "/jobs/" + this.job + "/log" + path + "?" + query.toString();
  }
  atBottom() { return this.pre.scrollHeight - this.pre.scrollTop - this.pre.clientHeight < 40; }
  append(nodes) {
    const follow = this.atBottom();
    const fragment = document.createDocumentFragment();
    for (const node of nodes) { fragment.appendChild(node); this.shown += node.textContent.length; }
    this.pre.appendChild(fragment);
    this.trim();
    if (follow) this.pre.scrollTop = this.pre.scrollHeight;
  }
  trim() {
    if (this.shown <= MAX_SHOWN) return;
    while (this.shown > MAX_SHOWN * 0.8 && this.pre.firstChild) {
      this.shown -= this.pre.firstChild.textContent.length;
      this.pre.removeChild(this.pre.firstChild);
    }
    if (this.earlier) this.earlier.hidden = true;
    this.say("Earlier output is no longer shown here: Download has all of it.");
  }
  say(text) { if (this.state) this.state.textContent = text; }
  async begin() {
    let next = 0;
    if (this.attempt) {
      const params = { attempt: this.attempt, tail: this.tail };
      const answer = await fetch(this.url("", params), { credentials: "same-origin" });
      if (!answer.ok) { this.say("The log could not be read (" + answer.status + ")."); return; }
      this.append(this.ansi.nodes(await answer.text()));
      this.start = parseInt(answer.headers.get("X-Offset") || "0", 10);
      next = parseInt(answer.headers.get("X-Next-Offset") || "0", 10);
      if (this.earlier) this.earlier.hidden = this.start <= 0;
      this.pre.scrollTop = this.pre.scrollHeight;
    }
    if (this.pre.dataset.follow) this.follow(next);
    else this.say("");
  }
  async loadEarlier() {
    const from = Math.max(0, this.start - LOG_PAGE);
    const params = { attempt: this.attempt, offset: from, until: this.start };
    const answer = await fetch(this.url("", params), { credentials: "same-origin" });
    if (!answer.ok) { this.say("Earlier output could not be read (" + answer.status + ")."); return; }
    // Colours set before this page are not known: it is shown as it stands.
    const nodes = new Ansi().nodes(await answer.text());
    const height = this.pre.scrollHeight;
    const fragment = document.createDocumentFragment();
    for (const node of nodes) { fragment.appendChild(node); this.shown += node.textContent.length; }
    this.pre.insertBefore(fragment, this.pre.firstChild);
    this.pre.scrollTop += this.pre.scrollHeight - height;
    this.start = from;
    this.earlier.hidden = from <= 0;
  }
  follow(offset) {
    const params = this.attempt ? { attempt: this.attempt, offset: offset } : { offset: 0 };
    const source = new EventSource(this.url("/follow", params));
    let first = true;
    this.say("Following the log live…");
    source.addEventListener("attempt", (event) => {
      const data = JSON.parse(event.data);
      if (!first || String(data.attempt) !== String(this.attempt)) {
        const marker = document.createElement("span");
        marker.className = "attempt";
        marker.textContent = "\n── attempt " + data.attempt + " ──\n";
        this.ansi = new Ansi();
        this.append([marker]);
      }
      first = false;
    });
    source.addEventListener("output", (event) => {
      const data = JSON.parse(event.data);
      first = false;
      this.append(this.ansi.nodes(data.content, data.stream === "stderr" ? "stderr" : ""));
    });
    source.addEventListener("end", (event) => {
      const data = JSON.parse(event.data);
      source.close();
      const code = data.exit_code === null ? "" : ", exit code " + data.exit_code;
      this.say("The job ended: " + data.status + code + ".");
    });
    source.addEventListener("error", (event) => {
      if (event.data) {
        source.close();
        this.say("Following stopped: " + JSON.parse(event.data).error);
      } else if (source.readyState === EventSource.CLOSED) {
        this.say("Following stopped: reload the page to go on.");
      } else {
        this.say("Reconnecting…"); // the browser resumes from the last event by itself
      }
    });
  }
}

// Bulk selection -------------------------------------------------------------------------
function selectAll() {
  const all = document.getElementById("select-all");
  if (!all) return;
  all.addEventListener("change", () => {
    for (const box of document.querySelectorAll('input[name="job"][form="bulk"]')) box.checked = all.checked;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  selectAll();
  const pre = document.getElementById("log-output");
  if (pre) new LogView(pre).begin();
});
