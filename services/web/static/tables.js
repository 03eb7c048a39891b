// The history pages: trades (every fill, by bot, with CSV export), profit by day / week / month
// (CSV too) and notifications. Each page holds one of the tables below; new fills and
// notifications refetch it live.
"use strict";

(() => {
  const { money, signClass, time, el, table } = A;
  const page = document.body.dataset.page;
  const side = (v) => (v === "BUY" ? "pos" : "neg");

  let shownFills = []; // the trades table's rows: a fill event waits until its fill is among them
  const fillsOf = (cid) => shownFills.filter((f) => f.cid === cid).length;

  async function trades() {
    const bot = document.getElementById("trades-bot").value;
    const only = bot ? `bot=${encodeURIComponent(bot)}` : "";
    const data = await A.get(`/api/trades?limit=500${only ? `&${only}` : ""}`);
    shownFills = data.fills;
    document.getElementById("trades-csv").href = `/api/trades.csv${only ? `?${only}` : ""}`;
    table("trades", [
      { key: "time", label: "Time", fmt: time },
      { key: "bot", label: "Bot", fmt: (v) => (v === "manual" ? v : el("a", { href: `/bots/${encodeURIComponent(v)}` }, v)) },
      { key: "symbol", label: "Market", fmt: (v, r) => `${v} ${r.venue}` },
      { key: "side", label: "Side", cls: side },
      { key: "price", label: "Price", num: true, fmt: (v) => money(v) },
      { key: "qty", label: "Quantity", num: true, fmt: (v) => money(v) },
      { key: "quote_qty", label: "Quote", num: true, fmt: (v) => money(v, 4) },
      { key: "fee", label: "Fee", num: true, minor: true, fmt: (v, r) => `${money(v)} ${r.fee_asset}` },
      { key: "cid", label: "Order", minor: true },
    ], data.fills, { key: (r) => `${r.venue}:${r.trade_id || r.cid}`, empty: "no trade yet" });
  }

  async function botChoices() {
    const pick = document.getElementById("trades-bot");
    const data = await A.get("/api/bots");
    for (const b of [...data.bots.map((b) => b.bot), "manual"]) pick.append(el("option", { value: b }, b));
    const wanted = new URLSearchParams(window.location.search).get("bot");
    if (wanted) pick.value = wanted;
    pick.addEventListener("change", () => run());
    if (wanted) run();
  }

  // profit: per bot (totals), then by period; its CSV is made here from the same JSON
  let profitCsv = "";
  async function profit() {
    const period = document.getElementById("profit-period").value;
    const data = await A.get(`/api/profit?period=${period}`);
    table("profit-bots", [
      { key: "bot", label: "Bot" },
      { key: "realised", label: "Realised", num: true, fmt: (v, r) => `${money(v, 4)} ${r.quote_asset}`, cls: signClass },
      { key: "unrealised", label: "Unrealised", num: true, fmt: (v) => money(v, 4), cls: signClass },
      { key: "fees", label: "Fees", num: true, fmt: (v) => money(v, 4) },
      { key: "closed", label: "Closed", num: true },
      { key: "win_rate", label: "Wins", num: true, fmt: (v) => A.pct(v, 1) },
      { key: "fills", label: "Fills", num: true },
    ], data.rows, { key: (r) => r.bot, empty: "no profit booked yet" });
    const quotes = [...new Set(data.periods.flatMap((p) => Object.keys(p.profit)))].sort();
    const rows = data.periods.map((p) => ({ ...p, ...Object.fromEntries(quotes.map((q) => [`q:${q}`, p.profit[q] ?? "0"])) }));
    table("profit", [
      { key: "start", label: { daily: "Day", weekly: "Week of", monthly: "Month" }[period], fmt: (v) => time(v).slice(0, period === "monthly" ? 7 : 10) },
      ...quotes.map((q) => ({ key: `q:${q}`, label: `Profit ${q}`, num: true, fmt: (v) => money(v, 4), cls: signClass })),
      { key: "closed", label: "Closed", num: true },
      { key: "wins", label: "Wins", num: true },
      { key: "fills", label: "Fills", num: true },
    ], rows, { empty: "no period with a fill" });
    document.getElementById("profit-note").textContent = data.up_to ? `up to the newest fill, ${time(data.up_to)}` : "";
    const head = ["start", "end", ...quotes.map((q) => `profit_${q}`), "closed", "wins", "fills"];
    profitCsv = [head, ...data.periods.map((p) => [time(p.start), time(p.end), ...quotes.map((q) => p.profit[q] ?? "0"), p.closed, p.wins, p.fills])]
      .map((line) => line.join(","))
      .join("\n");
  }

  function profitDownload() {
    const link = document.getElementById("profit-csv");
    link.addEventListener("click", () => {
      link.href = URL.createObjectURL(new Blob([`${profitCsv}\n`], { type: "text/csv" }));
      link.download = `profit-${document.getElementById("profit-period").value}.csv`;
    });
  }

  async function notifications() {
    const data = await A.get("/api/notifications?limit=200");
    table("notifications", [
      { key: "ts", label: "Time", fmt: time },
      { key: "level", label: "Level", fmt: (v) => el("span", { class: `badge ${v}` }, v) },
      { key: "bot", label: "Bot", fmt: (v) => (v && v !== "manual" ? el("a", { href: `/bots/${encodeURIComponent(v)}` }, v) : v || "–") },
      { key: "title", label: "Title" },
      { key: "text", label: "Text", wrap: true },
    ], data.notifications, { key: (r) => r.id, empty: "no notifications" });
  }

  const draw = { trades, profit, notifications }[page];
  const run = () => draw().catch((err) => A.say(`could not load: ${err.message}`, "error"));
  const soon = A.throttle(run, 500);
  if (page === "trades") botChoices().catch((err) => A.say(err.message, "error"));
  if (page === "profit") {
    document.getElementById("profit-period").addEventListener("change", () => run());
    profitDownload();
  }
  const chase = A.chase(draw);
  const onFill = (event) => {
    if (page !== "trades") return soon();
    const wanted = document.getElementById("trades-bot").value;
    if (wanted && event.bot !== wanted) return;
    const before = fillsOf(event.cid);
    chase(() => fillsOf(event.cid) > before);
  };
  A.live(page === "notifications" ? { notification: soon } : { fill: onFill }, run);
  run();
})();
