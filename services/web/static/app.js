// The pages' shared code: JSON from /api, tables, money formatting, the live feed (/api/live)
// and the control buttons. Plain browser JavaScript, no build step, no library (a Pi serves it
// as is). Money arrives as decimal strings and is shown as such: never parsed into a float.
"use strict";

const A = (() => {
  // CSRF double submit: the login's `automata_csrf` cookie echoed in a header (services/web/auth.py)
  const csrf = () => (document.cookie.match(/(?:^|;\s*)automata_csrf=([^;]*)/) || [])[1] || "";

  class ApiError extends Error {
    constructor(status, text) {
      super(`${status}: ${text}`);
      this.status = status;
      this.detail = text; // the API's own words ({"error": ...}), without the status
    }
  }

  // a 401 outside the login itself: the session is over (expired, or the token changed)
  let leaving = false; // logging out: the calls refused meanwhile need no login page of their own
  function relogin(status, url) {
    if (status !== 401 || url === "/api/login" || leaving) return;
    leaving = true;
    window.location.assign(`/login?next=${encodeURIComponent(window.location.pathname + window.location.search)}`);
  }

  async function get(url) {
    const reply = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    relogin(reply.status, url);
    if (!reply.ok) throw new ApiError(reply.status, errorText(await reply.text()));
    return reply.json();
  }

  async function post(url, body) {
    const reply = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body || {}),
    });
    const text = await reply.text();
    relogin(reply.status, url);
    if (!reply.ok) throw new ApiError(reply.status, errorText(text));
    return text ? JSON.parse(text) : {};
  }

  function errorText(text) {
    try {
      const data = JSON.parse(text);
      return data.detail || data.error || data.message || text;
    } catch {
      return text;
    }
  }

  // --- formatting ------------------------------------------------------------------------
  // "12345.678900" -> "12,345.6789": thousands grouped, trailing zeros dropped, digits kept.
  function money(value, places) {
    if (value === null || value === undefined || value === "") return "–";
    let text = plain(String(value));
    if (places !== undefined && /^-?\d+(\.\d+)?$/.test(text)) text = roundText(text, places);
    const negative = text.startsWith("-");
    if (negative) text = text.slice(1);
    let [whole, frac = ""] = text.split(".");
    frac = frac.replace(/0+$/, "");
    whole = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (negative ? "-" : "") + whole + (frac ? "." + frac : "");
  }

  // "9.8E-7" -> "0.00000098", "1E+3" -> "1000": Python's Decimal may send an exponent
  function plain(text) {
    const m = /^(-?)(\d+)(?:\.(\d*))?[eE]([+-]?\d+)$/.exec(text);
    if (!m) return text;
    const [, sign, whole, frac = "", exp] = m;
    let digits = whole + frac;
    let point = whole.length + Number(exp);
    if (point <= 0) {
      digits = "0".repeat(1 - point) + digits;
      point = 1;
    } else if (point > digits.length) digits = digits.padEnd(point, "0");
    const out = `${digits.slice(0, point).replace(/^0+(?=\d)/, "")}.${digits.slice(point)}`.replace(/\.$/, "");
    return sign + out;
  }

  // decimal-string rounding half up to `places` digits, done on the digits (no float)
  function roundText(text, places) {
    const negative = text.startsWith("-");
    const [whole, frac = ""] = text.replace("-", "").split(".");
    if (frac.length <= places) return text;
    let digits = (whole + frac.slice(0, places)).split("").map(Number);
    if (Number(frac[places]) >= 5) {
      let i = digits.length - 1;
      while (i >= 0 && digits[i] === 9) digits[i--] = 0;
      if (i < 0) digits.unshift(1);
      else digits[i] += 1;
    }
    const all = digits.join("");
    const cut = all.length - places;
    const out = places ? `${all.slice(0, cut)}.${all.slice(cut)}` : all;
    return (negative && /[1-9]/.test(out) ? "-" : "") + out;
  }

  // a ratio as a percentage, "0.0035" -> "0.35 %", by moving the decimal point (no float)
  function pct(value, places = 2) {
    if (value === null || value === undefined || value === "") return "–";
    const text = String(value);
    if (!/^-?\d+(\.\d+)?$/.test(text)) return text;
    const negative = text.startsWith("-");
    let [whole, frac = ""] = text.replace("-", "").split(".");
    frac = frac.padEnd(2, "0");
    const shifted = `${(whole + frac.slice(0, 2)).replace(/^0+(?=\d)/, "")}.${frac.slice(2) || "0"}`;
    return `${money((negative ? "-" : "") + shifted, places)} %`;
  }

  function signClass(value) {
    const text = String(value ?? "");
    if (text.startsWith("-")) return "neg";
    return /[1-9]/.test(text) ? "pos" : "";
  }

  // milliseconds since the epoch or an ISO text -> "2026-12-06 06:10:11" in UTC (the venue's time)
  function time(value) {
    if (value === null || value === undefined || value === "") return "–";
    const date = typeof value === "number" ? new Date(value) : new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    return date.toISOString().slice(0, 19).replace("T", " ");
  }

  // --- DOM -------------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // columns: [{key, label, fmt?(value,row) -> text|Node, cls?(value,row) -> class, num?, wrap?}]
  // (num: right-aligned digits; wrap: long text that may break lines; minor: left out on a phone)
  function table(target, columns, rows, options = {}) {
    const host = typeof target === "string" ? document.getElementById(target) : target;
    if (!host) return;
    if (!rows || rows.length === 0) {
      host.replaceChildren(el("p", { class: "empty" }, options.empty || "nothing yet"));
      return;
    }
    const head = el("tr", {}, columns.map((c) => el("th", { class: [c.num ? "num" : "", c.minor ? "minor" : ""].join(" ").trim() || undefined }, c.label)));
    const body = rows.map((row) =>
      el(
        "tr",
        { "data-key": options.key ? options.key(row) : undefined },
        columns.map((c) => {
          const value = row[c.key];
          const shown = c.fmt ? c.fmt(value, row) : value ?? "–";
          const cls = [c.num ? "num" : "", c.wrap ? "text" : "", c.minor ? "minor" : "", c.cls ? c.cls(value, row) : ""]
            .join(" ")
            .trim();
          return el("td", { class: cls || undefined, "data-label": c.label }, shown);
        }),
      ),
    );
    const cls = options.plain ? "grid" : "grid cards"; // cards: label/value rows on a phone
    host.replaceChildren(el("div", { class: "scroll" }, el("table", { class: cls }, el("thead", {}, head), el("tbody", {}, body))));
  }

  // a <dl class="stats"> of [label, value, class?] pairs, each pair in its own box
  function stats(target, pairs) {
    const host = typeof target === "string" ? document.getElementById(target) : target;
    host.replaceChildren(
      ...pairs.map(([k, v, cls]) => el("div", {}, el("dt", {}, k), el("dd", { class: cls || undefined, "data-stat": k }, v))),
    );
  }

  function say(text, kind = "info") {
    const box = document.getElementById("flash");
    if (!box) return;
    box.replaceChildren(el("div", { class: `flash ${kind}` }, text));
    clearTimeout(say.timer);
    say.timer = setTimeout(() => box.replaceChildren(), 6000);
  }

  // --- the live feed ---------------------------------------------------------------------
  // One EventSource per page; handlers by event name. The dot in the header says whether the
  // feed is up. Whatever happened while it was down (the web service restarted, the network
  // blipped) is not replayed: every reconnect calls onOpen, and the page refetches what it
  // shows from the API, which reads the state itself. The browser retries a dropped stream on
  // its own; one it gave up on (an error answer instead of the stream, e.g. a proxy's 502 while
  // the service restarts) is opened again here, every few seconds.
  function live(handlers, onOpen) {
    const dot = document.getElementById("live");
    const state = (up) => {
      if (!dot) return;
      dot.classList.toggle("up", up);
      dot.title = up ? "live" : "reconnecting";
      dot.dataset.state = up ? "up" : "down";
    };
    let opened = false;
    let source = null;
    const connect = () => {
      source = new EventSource("/api/live");
      source.onopen = () => {
        state(true);
        if (opened && onOpen) onOpen(); // a reconnect: refetch what the gap may have hidden
        opened = true;
      };
      source.onerror = () => {
        state(false);
        if (source.readyState === EventSource.CLOSED) setTimeout(connect, 3000);
      };
      for (const [name, handle] of Object.entries(handlers)) {
        source.addEventListener(name, (event) => {
          let data;
          try {
            data = JSON.parse(event.data);
          } catch {
            return; // a malformed event is dropped, never the page
          }
          handle(data);
        });
      }
    };
    connect();
    return () => source;
  }

  // call fn at most once per `ms` (the last call wins): many events, one refetch
  function throttle(fn, ms) {
    let timer = null;
    return (...args) => {
      if (timer) return;
      timer = setTimeout(() => {
        timer = null;
        fn(...args);
      }, ms);
    };
  }

  // A fill event comes from the order stream; the ledger writes the fill a moment later. chase
  // returns want(shown): refetch now, and again with a growing pause while shown() is false,
  // for up to 15 s — a row the ledger has not written yet appears when it has, without a reload.
  function chase(refresh) {
    let pending = [];
    let timer = null;
    let pause = 150;
    const attempt = async () => {
      timer = null;
      await refresh().catch(() => {});
      const now = Date.now();
      pending = pending.filter((p) => !p.shown() && now < p.until);
      if (pending.length) {
        pause = Math.min(pause * 2, 2000);
        timer = setTimeout(attempt, pause);
      }
    };
    return (shown) => {
      pending.push({ shown, until: Date.now() + 15000 });
      pause = 150;
      if (!timer) timer = setTimeout(attempt, pause);
    };
  }

  // buttons with data-action="pause" etc. inside `root` post to `url(action)` after a confirm
  function controls(root, url, after) {
    root.querySelectorAll("button[data-action]").forEach((button) => {
      button.addEventListener("click", async () => {
        const action = button.dataset.action;
        if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
        button.disabled = true;
        try {
          await post(url(action), {});
          say(`${action}: sent`, "ok");
          if (after) after(action);
        } catch (err) {
          say(`${action} refused: ${err.message}`, "error");
        } finally {
          button.disabled = false;
        }
      });
    });
  }

  // read-only (services/web/auth.py): the page shows no control at all
  const readOnly = document.body.hasAttribute("data-read-only");

  // a Cancel button for one open order (none in read-only mode): after a confirm it posts the
  // cancel (force: a bot's order, which the bot itself cancels); the row goes when the order's
  // CANCELED update arrives on the live feed and the page refetches its table
  function cancelButton(cid, force) {
    if (readOnly) return "";
    const button = el("button", { type: "button", class: "danger small", "data-cancel": cid }, "Cancel");
    button.addEventListener("click", async () => {
      const whose = force ? " It is a bot's order: the bot cancels it and carries on." : "";
      if (!window.confirm(`Cancel order ${cid}?${whose}`)) return;
      button.disabled = true;
      try {
        const sent = await post(`/api/orders/${encodeURIComponent(cid)}/cancel`, { force });
        say(`cancel ${cid}: ${sent.status}`, "ok");
      } catch (err) {
        say(`cancel ${cid} refused: ${err.message}`, "error");
        button.disabled = false;
      }
    });
    return button;
  }

  document.getElementById("logout")?.addEventListener("click", async () => {
    leaving = true;
    await post("/api/logout", {}).catch(() => {});
    window.location.assign("/login");
  });

  return { get, post, money, pct, signClass, time, el, table, stats, say, live, throttle, chase, controls, readOnly, cancelButton };
})();
