// The history pages: trades (every fill, by bot, with CSV export), profit by day / week / month
// (CSV too) and notifications. Each page holds one of the tables below; new fills and
// notifications refetch it live.
"use strict";

(() => {
  const { money, signClass, time, el, table } = A;
  const page = document.body.dataset.page;
  const side = (v) => (v === "BUY" ? "pos" : "neg");

  async function trades() {
    const pick = document.getElementById("trades-bot");
    const bot = pick.value;
    const query = bot ? `?bot=${encodeURIComponent(bot)}&limit=500` : "?limit=500";
    const data = await A.get(`/api/fills${query}`);
    document.getElementById("trades-csv").href = `/api/fills.csv${bot ? `?bot=${encodeURIComponent(bot)}` : ""}`;
    table("trades", [
      { key: "ts", label: "Time", fmt: time },
      { key: "bot", label: "Bot", fmt: (v) => el("a", { href: `/bots/${encodeURIComponent(v)}` }, v) },
      { key: "symbol", label: "Market", fmt: (v, r) => `${v} ${r.venue || ""}`.trim() },
      { key: "side", label: "Side", cls: side },
      { key: "price", label: "Price", num: true, fmt: (v) => money(v) },
      { key: "qty", label: "Quantity", num: true, fmt: (v) => money(v) },
      { key: "quote", label: "Quote", num: true, fmt: (v) => money(v, 4) },
      { key: "fee", label: "Fee", num: true, fmt: (v, r) => `${money(v)} ${r.fee_asset || ""}`.trim() },
      { key: "cid", label: "Order" },
    ], data.fills || data, { key: (r) => r.id ?? r.trade_id, empty: "no trade yet" });
  }

  async function botChoices() {
    const pick = document.getElementById("trades-bot");
    const data = await A.get("/api/bots");
    for (const b of data.bots || data) pick.append(el("option", { value: b.bot }, b.bot));
    const wanted = new URLSearchParams(window.location.search).get("bot");
    if (wanted) pick.value = wanted;
    pick.addEventListener("change", () => run());
  }

  async function profit() {
    const period = document.getElementById("profit-period").value;
    const data = await A.get(`/api/profit?period=${period}`);
    document.getElementById("profit-csv").href = `/api/profit.csv?period=${period}`;
    table("profit", [
      { key: "period", label: period[0].toUpperCase() + period.slice(1) },
      { key: "bot", label: "Bot" },
      { key: "trades", label: "Fills", num: true },
      { key: "realised", label: "Realised", num: true, fmt: (v) => money(v, 4), cls: signClass },
      { key: "fees", label: "Fees", num: true, fmt: (v) => money(v, 4) },
      { key: "quote", label: "In", fmt: (v) => v ?? "" },
    ], data.rows || data.periods || data, { empty: "no profit booked yet" });
  }

  async function notifications() {
    const data = await A.get("/api/notifications?limit=200");
    table("notifications", [
      { key: "ts", label: "Time", fmt: time },
      { key: "level", label: "Level", fmt: (v) => el("span", { class: `badge ${v}` }, v) },
      { key: "bot", label: "Bot", fmt: (v) => (v ? el("a", { href: `/bots/${encodeURIComponent(v)}` }, v) : "–") },
      { key: "text", label: "Text" },
    ], data.notifications || data, { key: (r) => r.id, empty: "no notifications" });
  }

  const draw = { trades, profit, notifications }[page];
  const run = () => draw().catch((err) => A.say(`could not load: ${err.message}`, "error"));
  const soon = A.throttle(run, 500);
  if (page === "trades") botChoices().catch((err) => A.say(err.message, "error"));
  if (page === "profit") document.getElementById("profit-period").addEventListener("change", () => run());
  A.live(page === "notifications" ? { notification: soon } : { fill: soon }, run);
  run();
})();
