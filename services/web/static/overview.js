// The overview: balances (free / locked / total per asset, equity), the equity curve, every
// bot at a glance, the services' health and the latest notifications. A balance, fill, bot or
// notification event refetches what it changes (a few per second at most).
"use strict";

(() => {
  const { money, signClass, time, el, table } = A;

  async function balances() {
    const data = await A.get("/api/balances");
    const rows = [];
    const totals = [];
    for (const account of data.accounts || []) {
      for (const b of account.balances) rows.push({ venue: account.venue, quote: account.quote, ...b });
      totals.push(`${account.venue} ${money(account.equity, 2)} ${account.quote}`);
    }
    const several = (data.accounts || []).length > 1;
    table("balances", [
      several && { key: "venue", label: "Venue" },
      { key: "asset", label: "Asset" },
      { key: "free", label: "Free", num: true, fmt: (v) => money(v) },
      { key: "locked", label: "Locked", num: true, fmt: (v) => money(v) },
      { key: "total", label: "Total", num: true, fmt: (v) => money(v) },
      { key: "value", minor: true, label: `Value${several ? "" : ` (${data.accounts[0]?.quote || ""})`}`, num: true, fmt: (v, r) => (v === null ? "–" : several ? `${money(v, 2)} ${r.quote}` : money(v, 2)) },
    ].filter(Boolean), rows, { key: (r) => `${r.venue}:${r.asset}`, empty: "no balances reported yet" });
    const missing = (data.missing || []).length ? ` · no balances yet: ${data.missing.join(", ")}` : "";
    document.getElementById("equity-total").textContent = (totals.length ? `equity ${totals.join(" · ")}` : "") + missing;
  }

  async function equity() {
    const data = await A.get("/api/equity");
    const series = (data.series || [])[0];
    const host = document.getElementById("equity");
    const points = (series?.points || []).map((p) => ({ t: p.at, v: Number(p.value) })).filter((p) => Number.isFinite(p.v));
    document.getElementById("equity-note").textContent = series
      ? `${series.venue}, in ${series.quote_asset} · drawdown ${money(series.drawdown, 2)}`
      : "";
    if (points.length < 2) {
      host.replaceChildren(el("p", { class: "empty" }, "not enough history yet (one point a day)"));
      return;
    }
    host.replaceChildren(sparkline(points, host.clientWidth || 400, 160));
  }

  // the equity curve: a line with its low and high marked (SVG, like the candle chart)
  function sparkline(points, width, height) {
    const NS = "http://www.w3.org/2000/svg";
    const lo = Math.min(...points.map((p) => p.v));
    const hi = Math.max(...points.map((p) => p.v));
    const t0 = points[0].t;
    const t1 = points[points.length - 1].t;
    const x = (t) => 4 + ((t - t0) / (t1 - t0 || 1)) * (width - 70);
    const y = (v) => 8 + ((hi - v) / (hi - lo || 1)) * (height - 24);
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("class", "chart equity");
    const path = document.createElementNS(NS, "path");
    path.setAttribute("d", points.map((p, i) => `${i ? "L" : "M"}${x(p.t)},${y(p.v)}`).join(" "));
    path.setAttribute("class", "equityline");
    svg.append(path);
    for (const [v, cls] of [[hi, "hi"], [lo, "lo"]]) {
      const text = document.createElementNS(NS, "text");
      text.setAttribute("x", width - 62);
      text.setAttribute("y", y(v) + 4);
      text.setAttribute("class", `axis ${cls}`);
      text.textContent = v.toLocaleString("en-US", { maximumFractionDigits: 2 });
      svg.append(text);
    }
    const when = document.createElementNS(NS, "text");
    when.setAttribute("x", 4);
    when.setAttribute("y", height - 4);
    when.setAttribute("class", "axis");
    when.textContent = `${time(t0)} → ${time(t1)}`;
    svg.append(when);
    return svg;
  }

  async function bots() {
    const data = await A.get("/api/bots");
    table("bots", [
      { key: "bot", label: "Bot", fmt: (v) => el("a", { href: `/bots/${encodeURIComponent(v)}` }, v) },
      { key: "symbol", label: "Market", fmt: (v, r) => (v ? `${v} ${r.venue}` : "–") },
      { key: "mode", label: "Mode", fmt: (v, r) => el("span", { class: `badge ${r.stalled ? "stale" : v.split(" ")[0]}` }, r.stalled ? `${v}, stalled` : v) },
      { key: "position", label: "Position", num: true, fmt: (v) => money(v) },
      { key: "avg_price", label: "Avg price", num: true, fmt: (v) => money(v, 2) },
      { key: "open_orders", label: "Orders", num: true },
      { key: "realised", label: "Realised", num: true, fmt: (v) => money(v, 4), cls: signClass },
      { key: "unrealised", label: "Unrealised", num: true, fmt: (v) => money(v, 4), cls: signClass },
      { key: "last_decision", label: "Last decision", wrap: true, fmt: (v, r) => (r.failed ? el("span", { class: "neg" }, r.failed) : v?.text ?? "–") },
    ], data.bots, { key: (r) => r.bot, empty: "no bots" });
  }

  // a stopped service's heartbeat key expires and the API no longer lists it: one this page saw
  // stays in the table, marked down, rather than silently leaving it
  const seen = new Map();
  async function services() {
    const data = await A.get("/api/services");
    const key = (r) => `${r.service}:${r.instance}`;
    const now = new Set(data.services.map(key));
    data.services.forEach((r) => seen.set(key(r), r));
    const gone = [...seen.values()].filter((r) => !now.has(key(r))).map((r) => ({ ...r, gone: true }));
    const rows = [...data.services, ...gone].sort((a, b) => key(a).localeCompare(key(b)));
    table("services", [
      { key: "service", label: "Service", fmt: (v, r) => (r.instance ? `${v} ${r.instance}` : v) },
      { key: "stale", label: "Health", fmt: (v, r) => (r.gone ? el("span", { class: "badge down", title: "no heartbeat: stopped or crashed" }, "down")
        : el("span", { class: `badge ${v ? "down" : "ok"}` }, v ? "stale" : "ok")) },
      { key: "beat_age_s", label: "Heartbeat", num: true, fmt: (v, r) => (r.gone ? "none" : `${Number(v).toFixed(1)} s ago`) },
      { key: "uptime_s", label: "Up", num: true, fmt: (v, r) => (r.gone ? "–" : duration(v)) },
      { key: "pid", label: "Pid", num: true },
    ], rows, { key, empty: "no service has reported yet" });
  }

  function duration(seconds) {
    const s = Math.floor(Number(seconds) || 0);
    if (s < 120) return `${s} s`;
    if (s < 7200) return `${Math.floor(s / 60)} min`;
    if (s < 172800) return `${Math.floor(s / 3600)} h`;
    return `${Math.floor(s / 86400)} d`;
  }

  async function notifications() {
    const data = await A.get("/api/notifications?limit=8");
    table("notifications", [
      { key: "ts", label: "Time", fmt: time },
      { key: "level", label: "Level", fmt: (v) => el("span", { class: `badge ${v}` }, v) },
      { key: "text", label: "Text", wrap: true, fmt: (v, r) => (r.title && !v.startsWith(r.title) ? `${r.title}: ${v}` : v) },
    ], data.notifications, { key: (r) => r.id, empty: "no notifications" });
  }

  const parts = { balances, equity, bots, services, notifications };
  const run = (name) => parts[name]().catch((err) => A.say(`${name}: ${err.message}`, "error"));
  const soon = Object.fromEntries(Object.keys(parts).map((name) => [name, A.throttle(() => run(name), 300)]));
  const all = () => Object.keys(parts).forEach(run);

  A.live(
    {
      balance: soon.balances,
      fill: () => (soon.balances(), soon.bots(), soon.equity()),
      order: soon.bots,
      bot: soon.bots,
      decision: soon.bots,
      notification: soon.notifications,
    },
    all,
  );
  all();
  setInterval(() => document.visibilityState === "visible" && (run("services"), run("equity")), 10000);
})();
