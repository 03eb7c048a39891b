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
  let detail = null; // the last /api/bots/{bot} answer
  let plan = null; // a DCA bot's ladder (/plan)

  const num = (v) => (v === null || v === undefined || v === "" ? NaN : Number(v));
  const sideCls = (v) => (v === "BUY" ? "pos" : v === "SELL" ? "neg" : "dim");

  // a bot the system does not know (a mistyped address, a bot not started yet): said once, in
  // place of the page's parts and controls, until its state appears (a `bot` event refetches)
  function missing(err) {
    const gone = err?.status === 404;
    document.getElementById("bot-missing").hidden = !gone;
    document.getElementById("bot-missing-text").textContent = gone ? `${err.detail}.` : "";
    document.querySelectorAll("main > section.card:not(#bot-missing)").forEach((card) => card.toggleAttribute("data-missing", gone));
    document.body.toggleAttribute("data-bot-missing", gone);
    return gone;
  }

  async function state() {
    try {
      detail = await A.get(base);
    } catch (err) {
      if (missing(err)) return;
      throw err;
    }
    missing(null);
    const s = detail.summary;
    const st = detail.state || {};
    const mode = document.getElementById("bot-mode");
    mode.textContent = s.stalled ? `${s.mode}, stalled` : s.mode;
    mode.className = `badge ${s.stalled ? "stale" : s.mode.split(" ")[0]}`;
    mode.dataset.mode = s.mode;
    // the button that would change nothing is off (a click still only asks: the bot decides);
    // a stopped bot is not paused either: only resume (or close) moves it
    const now = s.mode.split(" ")[0];
    const off = { pause: ["paused", "stopped"], resume: ["running"], stop: ["stopped"] };
    document.querySelectorAll("#controls button[data-action]").forEach((b) => {
      b.disabled = (off[b.dataset.action] || []).includes(now);
    });
    document.getElementById("bot-strategy").textContent =
      [detail.strategy, s.symbol && `${s.symbol} on ${s.venue}`].filter(Boolean).join(" · ");
    const stats = [
      ["Phase", st.phase ?? "–"],
      ["Position", money(s.position)],
      ["Average price", money(s.avg_price, 2)],
      ["Realised", money(s.realised, 4), signClass(s.realised)],
      ["Unrealised", money(s.unrealised, 4), signClass(s.unrealised)],
      ["Open orders", s.open_orders],
      ["Last input", s.last_input_s === null ? "–" : `${s.last_input_s} s ago`],
    ];
    if (st.cycle !== undefined) stats.push(["Cycle", `${st.cycle} (${st.cycles_closed ?? 0} closed)`]);
    if (st.round_trips !== undefined) stats.push(["Round trips", st.round_trips]);
    if (s.failed) stats.push(["Failed", s.failed, "neg"]);
    A.stats("state", stats);
    const d = s.last_decision;
    document.getElementById("decision").textContent = d ? `${time(d.ts)} — ${d.text}` : "–";
    orders(detail.orders);
    // the ladder of the cycle open now: the API starts it at the cycle's opening buy
    if (detail.strategy === "dca") plan = await A.get(`${base}/plan`).catch(() => null);
    levels();
    if (lastChart) drawChart(lastChart); // its orders and levels moved: redraw them now
  }

  function orders(rows) {
    table("orders", [
      { key: "cid", label: "Order" },
      { key: "tag", label: "Role" },
      { key: "side", label: "Side", cls: sideCls },
      { key: "order_type", label: "Type", minor: true },
      { key: "price", label: "Price", num: true, fmt: (v, r) => money(v ?? r.stop_price) },
      { key: "quantity", label: "Quantity", num: true, fmt: (v, r) => (v === null ? `${money(r.quote_quantity)} quote` : money(v)) },
      { key: "cum_filled_qty", label: "Filled", num: true, minor: true, fmt: (v) => money(v) },
      { key: "status", label: "Status", minor: true },
      !A.readOnly && { key: "cid", label: "", fmt: (v) => A.cancelButton(v, true) },
    ].filter(Boolean), rows, { key: (r) => r.cid, empty: "no open order" });
  }

  // a ladder level: filled this cycle, out now as an order (tag so{n}), to come, or beyond the budget
  function ladderBadge(level) {
    const out = detail.orders.some((o) => o.tag === `so${level.level}`);
    const [cls, text] = level.filled ? ["badge ok", "filled"] : out ? ["badge warn", "open order"]
      : level.placed ? ["dim", "planned"] : ["dim", "beyond budget"];
    return el("span", { class: cls, "data-level-state": text }, text);
  }

  // the strategy's own levels: the DCA ladder, the grid, or the fractal stop
  function levels() {
    const st = detail.state || {};
    const title = document.getElementById("levels-title");
    document.getElementById("levels-card").hidden = false;
    if (plan) {
      title.textContent = `DCA ladder · cycle ${plan.cycle}, ${plan.phase}`;
      table("levels", [
        { key: "level", label: "Level", fmt: (v) => (v === 0 ? "base" : `safety ${v}`) },
        { key: "price", label: "Price", num: true, fmt: (v) => money(v, 2) },
        { key: "drop", label: "Drop", num: true, fmt: (v) => A.pct(v) },
        { key: "quote", label: "Amount", num: true, fmt: (v) => money(v, 2) },
        { key: "tp_price", label: "Take profit at", num: true, fmt: (v) => money(v, 2) },
        { key: "filled", label: "", fmt: (v, r) => ladderBadge(r) },
      ], plan.levels, { key: (r) => `L${r.level}`, empty: "no ladder" });
    } else if (st.prices) {
      title.textContent = `Grid levels${st.ended ? ` · ended: ${st.ended}` : ""}`;
      const byPrice = new Map(detail.orders.map((o) => [num(o.price), o]));
      const rows = st.prices.map((price) => ({ price, order: byPrice.get(num(price)) })).reverse();
      table("levels", [
        { key: "price", label: "Price", num: true, fmt: (v) => money(v, 2) },
        { key: "order", label: "Order", fmt: (o) => (o ? `${o.side.toLowerCase()} ${money(o.quantity)}` : "–"), cls: (o) => sideCls(o?.side) },
      ], rows, { plain: true });
    } else if (st.tracker || st.stop !== undefined) {
      title.textContent = "Fractal stop";
      table("levels", [
        { key: "name", label: "" },
        { key: "value", label: "", num: true },
      ], [
        { name: "bought at", value: money(st.entry, 2) },
        { name: "protected", value: money(st.quantity) },
        { name: "stop in force", value: money(st.stop, 2) },
        { name: "stop moves", value: st.stop_moves ?? 0 },
        { name: "sold for", value: money(st.sold_quote, 2) },
      ], { plain: true });
    } else {
      document.getElementById("levels-card").hidden = true;
    }
  }

  // what the chart draws beside the candles: open orders, the ladder, the grid, the stop, fractals
  function overlays() {
    const lines = [];
    const st = detail?.state || {};
    const open = new Set();
    for (const o of detail?.orders || []) {
      const price = Number.isFinite(num(o.price)) ? num(o.price) : num(o.stop_price);
      open.add(price);
      lines.push({ price, cls: o.side === "BUY" ? "buy" : "sell", label: `${o.tag || o.side.toLowerCase()} ${money(o.quantity)}` });
    }
    for (const l of plan?.levels || []) {
      const price = num(l.price);
      if (!open.has(price)) lines.push({ price, cls: l.filled ? "filled" : "planned", label: l.level ? `SO${l.level}` : "base" });
    }
    for (const price of st.prices || []) if (!open.has(num(price))) lines.push({ price: num(price), cls: "grid" });
    const stops = st.stop ? [{ t: 0, price: num(st.stop) }] : [];
    const fractals = (st.tracker?.recent || []).map(([t, low]) => ({ t, price: num(low), dir: "down" }));
    return { lines, stops, fractals };
  }

  async function candles() {
    // about 6 px a candle: a phone shows the last hour, a desktop the last few
    const limit = Math.max(40, Math.min(300, Math.floor(document.getElementById("chart").clientWidth / 6)));
    drawChart(await A.get(`${base}/chart?limit=${limit}`));
  }

  // the candles and fills of the last /chart answer, with the overlays of the newest state
  let lastChart = null;
  function drawChart(data) {
    lastChart = data;
    chart.draw({
      candles: data.candles.map((c) => ({ t: c.open_time, o: num(c.open), h: num(c.high), l: num(c.low), c: num(c.close) })),
      marks: data.fills.map((f) => ({ id: f.trade_id || f.cid, t: f.time, price: num(f.price), side: f.side, label: `${f.cid} ${f.side} ${f.qty} @ ${f.price}` })),
      ...overlays(),
    });
    document.getElementById("chart-note").textContent = [data.symbol, data.venue, data.interval].filter(Boolean).join(" · ");
  }

  let shownFills = [];
  const fillsOf = (cid) => shownFills.filter((f) => f.cid === cid).length;
  const chaseFills = A.chase(() => Promise.all([fills(), candles(), cycles()]));

  async function fills() {
    const data = await A.get(`${base}/fills?limit=20`);
    shownFills = data.fills;
    table("fills", [
      { key: "time", label: "Time", fmt: time },
      { key: "cid", label: "Order", minor: true },
      { key: "side", label: "Side", cls: sideCls },
      { key: "price", label: "Price", num: true, fmt: (v) => money(v) },
      { key: "qty", label: "Quantity", num: true, fmt: (v) => money(v) },
      { key: "quote_qty", label: "Quote", num: true, fmt: (v) => money(v, 4) },
      { key: "fee", label: "Fee", num: true, minor: true, fmt: (v, r) => `${money(v)} ${r.fee_asset}` },
    ], data.fills, { key: (r) => r.trade_id || r.cid, empty: "no fill yet" });
  }

  async function cycles() {
    const data = await A.get(`${base}/cycles?limit=20`);
    table("cycles", [
      { key: "number", label: "Cycle" },
      { key: "opened_at", label: "Opened", fmt: time },
      { key: "closed_at", label: "Closed", fmt: (v) => (v ? time(v) : "open") },
      { key: "buys", label: "Buys", num: true },
      { key: "sells", label: "Sells", num: true },
      { key: "profit", label: "Profit", num: true, fmt: (v, r) => (v === null ? "–" : `${money(v, 4)} ${r.quote_asset}`), cls: signClass },
    ], data.cycles, { key: (r) => r.number, empty: "no cycle yet" });
  }

  document.getElementById("fills-csv").href = `/api/trades.csv?bot=${encodeURIComponent(bot)}`;
  document.getElementById("fills-all").href = `/trades?bot=${encodeURIComponent(bot)}`;
  const parts = { state, candles, fills, cycles };
  const run = (name) => parts[name]().catch((err) => A.say(`${name}: ${err.message}`, "error"));
  // a bot's state moves with every candle it reads (twice a second in the demo): once a second is enough
  const every = { state: 1000, candles: 500, fills: 250, cycles: 250 };
  const soon = Object.fromEntries(Object.keys(parts).map((name) => [name, A.throttle(() => run(name), every[name])]));
  const mine = (handler) => (data) => data.bot === bot && handler(data);
  const all = () => {
    // the chart draws the state's levels: the state first
    state().then(() => detail && run("candles"), (err) => A.say(`state: ${err.message}`, "error"));
    run("fills");
    run("cycles");
  };
  const controls = document.getElementById("controls");
  if (controls) A.controls(controls, (action) => `${base}/${action}`, () => soon.state());

  A.live(
    {
      fill: mine((event) => {
        soon.state();
        const before = fillsOf(event.cid);
        chaseFills(() => fillsOf(event.cid) > before);
      }),
      order: mine(() => (soon.state(), soon.candles())),
      bot: mine(() => soon.state()),
      decision: mine(() => soon.state()),
    },
    all,
  );
  all();
  setInterval(() => document.visibilityState === "visible" && !document.body.hasAttribute("data-bot-missing") && run("candles"), 5000);
})();
