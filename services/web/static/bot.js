// A bot's page: its state, the chart with its orders and fills (live), open orders, its levels
// (the DCA ladder with the filled levels, the grid, the fractal stop), cycles, fills, and the
// controls. Events for this bot refetch the parts they change; the chart also follows the
// market every few seconds while the page is visible.
"use strict";

(() => {
  const { money, signClass, time, el, table } = A;
  const bot = document.getElementById("bot").dataset.bot;
  const base = `/api/bots/${encodeURIComponent(bot)}`;
  const chart = Chart.create(document.getElementById("chart"));
  let detail = null; // the last /api/bots/{bot} answer: the chart draws its levels

  const num = (v) => (v === null || v === undefined || v === "" ? NaN : Number(v));

  async function state() {
    detail = await A.get(base);
    const mode = document.getElementById("bot-mode");
    mode.textContent = detail.mode;
    mode.className = `badge ${detail.mode}`;
    mode.dataset.mode = detail.mode;
    document.getElementById("bot-strategy").textContent = `${detail.strategy} · ${detail.symbol} on ${detail.venue}`;
    const pos = detail.position || {};
    const stats = [
      ["Phase", detail.phase ?? "–"],
      ["Position", `${money(pos.qty)} ${detail.base || ""}`.trim()],
      ["Average price", money(pos.avg_price ?? pos.avg, 2)],
      ["Realised", money(detail.realised, 4), signClass(detail.realised)],
      ["Unrealised", money(detail.unrealised, 4), signClass(detail.unrealised)],
      ["Last price", money(detail.last_price, 2)],
    ];
    document.getElementById("state").replaceChildren(
      ...stats.flatMap(([k, v, cls]) => [el("dt", {}, k), el("dd", { class: cls || undefined, "data-stat": k }, v)]),
    );
    const decision = detail.last_decision || detail.decision;
    document.getElementById("decision").textContent = decision ? `${time(decision.ts)} — ${decision.text}` : "–";
    orders(detail.open_orders || detail.orders || []);
    levels(detail);
  }

  function orders(rows) {
    table("orders", [
      { key: "cid", label: "Order" },
      { key: "side", label: "Side", cls: (v) => (v === "BUY" ? "pos" : "neg") },
      { key: "type", label: "Type" },
      { key: "price", label: "Price", num: true, fmt: (v, r) => money(v || r.stop_price) },
      { key: "qty", label: "Quantity", num: true, fmt: (v) => money(v) },
      { key: "filled", label: "Filled", num: true, fmt: (v) => money(v) },
      { key: "status", label: "Status" },
    ], rows, { key: (r) => r.cid, empty: "no open order" });
  }

  // the strategy's own levels: the DCA ladder, the grid, or the fractal stop
  function levels(d) {
    const title = document.getElementById("levels-title");
    if (d.dca) {
      title.textContent = "DCA ladder";
      table("levels", [
        { key: "level", label: "Level", fmt: (v) => (v === 0 ? "base" : `safety ${v}`) },
        { key: "price", label: "Price", num: true, fmt: (v) => money(v, 2) },
        { key: "quote", label: "Amount", num: true, fmt: (v) => money(v, 2) },
        { key: "drop", label: "Drop", num: true, fmt: (v) => (v ? `${money(v, 2)} %` : "–") },
        { key: "target", label: "Take profit", num: true, fmt: (v) => money(v, 2) },
        { key: "filled", label: "", fmt: (v) => (v ? el("span", { class: "badge ok" }, "filled") : el("span", { class: "dim" }, "planned")) },
      ], d.dca.levels || [], { key: (r) => `L${r.level}`, empty: "no cycle open" });
    } else if (d.grid) {
      title.textContent = "Grid levels";
      table("levels", [
        { key: "price", label: "Price", num: true, fmt: (v) => money(v, 2) },
        { key: "side", label: "Order", cls: (v) => (v === "BUY" ? "pos" : v === "SELL" ? "neg" : "dim") },
        { key: "qty", label: "Quantity", num: true, fmt: (v) => money(v) },
      ], [...(d.grid.levels || [])].reverse(), { empty: "the grid has not started" });
    } else if (d.fractal) {
      title.textContent = "Fractal stop";
      table("levels", [
        { key: "name", label: "" },
        { key: "value", label: "", num: true },
      ], [
        { name: "entry", value: money(d.fractal.entry, 2) },
        { name: "protected", value: money(d.fractal.quantity) },
        { name: "stop in force", value: money(d.fractal.stop, 2) },
        { name: "stop moves", value: d.fractal.stop_moves ?? 0 },
      ], { plain: true });
    } else {
      document.getElementById("levels-card").hidden = true;
    }
  }

  // the chart's levels from the state: open orders, the ladder, the grid, the stop
  function chartLevels(d) {
    const lines = [];
    if (!d) return { lines, stops: [] };
    const open = new Set();
    for (const o of d.open_orders || d.orders || []) {
      const price = num(o.price) || num(o.stop_price);
      open.add(price);
      lines.push({ price, cls: o.side === "BUY" ? "buy" : "sell", label: `${o.side.toLowerCase()} ${money(o.qty)}` });
    }
    for (const l of d.dca?.levels || []) {
      const price = num(l.price);
      if (!open.has(price)) lines.push({ price, cls: l.filled ? "filled" : "planned", label: l.level ? `SO${l.level}` : "base" });
    }
    for (const g of d.grid?.levels || []) {
      if (!open.has(num(g.price))) lines.push({ price: num(g.price), cls: "grid" });
    }
    const stops = (d.fractal?.stops || []).map((s) => ({ t: s.ts, price: num(s.price) }));
    if (!stops.length && d.fractal?.stop) stops.push({ t: 0, price: num(d.fractal.stop) });
    return { lines, stops };
  }

  async function candles() {
    const data = await A.get(`${base}/candles`);
    const { lines, stops } = chartLevels(detail);
    chart.draw({
      candles: (data.candles || []).map((c) => ({ t: c.t ?? c.open_time, o: num(c.o ?? c.open), h: num(c.h ?? c.high), l: num(c.l ?? c.low), c: num(c.c ?? c.close) })),
      lines,
      stops: (data.stops || []).map((s) => ({ t: s.ts, price: num(s.price) })).concat(stops),
      marks: (data.fills || []).map((f) => ({ id: f.id ?? f.trade_id, t: f.ts, price: num(f.price), side: f.side, label: `${f.side} ${f.qty} @ ${f.price}` })),
      fractals: (data.fractals || []).map((f) => ({ t: f.ts, price: num(f.price), dir: f.dir })),
    });
    document.getElementById("chart-note").textContent = data.interval ? `${data.symbol} ${data.interval}` : "";
  }

  async function fills() {
    const data = await A.get(`${base}/fills?limit=50`);
    table("fills", [
      { key: "ts", label: "Time", fmt: time },
      { key: "cid", label: "Order" },
      { key: "side", label: "Side", cls: (v) => (v === "BUY" ? "pos" : "neg") },
      { key: "price", label: "Price", num: true, fmt: (v) => money(v) },
      { key: "qty", label: "Quantity", num: true, fmt: (v) => money(v) },
      { key: "quote", label: "Quote", num: true, fmt: (v) => money(v, 4) },
      { key: "fee", label: "Fee", num: true, fmt: (v, r) => `${money(v)} ${r.fee_asset || ""}`.trim() },
    ], data.fills || data, { key: (r) => r.id ?? r.trade_id, empty: "no fill yet" });
  }

  async function cycles() {
    const data = await A.get(`${base}/cycles`);
    table("cycles", [
      { key: "cycle", label: "Cycle" },
      { key: "opened", label: "Opened", fmt: time },
      { key: "closed", label: "Closed", fmt: time },
      { key: "buys", label: "Buys", num: true },
      { key: "profit", label: "Profit", num: true, fmt: (v) => money(v, 4), cls: signClass },
    ], data.cycles || data, { empty: "no cycle closed yet" });
  }

  document.getElementById("fills-csv").href = `/api/fills.csv?bot=${encodeURIComponent(bot)}`;
  const controls = document.getElementById("controls");
  if (controls) A.controls(controls, (action) => `${base}/${action}`, () => setTimeout(() => run("state"), 300));

  const parts = { state, candles, fills, cycles };
  const run = (name) => parts[name]().catch((err) => A.say(`${name}: ${err.message}`, "error"));
  const soon = Object.fromEntries(Object.keys(parts).map((name) => [name, A.throttle(() => run(name), 250)]));
  const mine = (handler) => (data) => data.bot === bot && handler(data);
  const all = () => {
    // the chart draws the state's levels: the state first
    state().then(() => run("candles")).catch((err) => A.say(`state: ${err.message}`, "error"));
    run("fills");
    run("cycles");
  };

  A.live(
    {
      fill: mine(() => (soon.fills(), soon.state(), soon.candles(), soon.cycles())),
      order: mine(() => (soon.state(), soon.candles())),
      bot: mine(soon.state),
      decision: mine(soon.state),
    },
    all,
  );
  all();
  setInterval(() => document.visibilityState === "visible" && run("candles"), 5000);
})();
