// The Trade page: a manual order (market or limit, buy or sell, sized in base or, at market, in
// quote) posted to POST /api/orders as `automata order buy|sell` does; its fate (filled, or
// refused with the venue's reason) shown as its updates arrive on the live feed, or as the ledger
// recorded it when the feed missed them, and a gateway silent for 5 s said; the open manual
// orders, each with its Cancel button.
"use strict";

(() => {
  const { money, time, el, table } = A;
  const OPEN = new Set(document.getElementById("manual-orders").dataset.open.split(" ")); // shared/order_lifecycle.py
  const form = document.getElementById("order-form");
  const result = document.getElementById("order-result");
  const updates = new Map(); // cid -> the newest order update seen (an update may beat the POST's answer)
  let placed = null; // the cid of the order this page placed last
  let silence = null; // the timer saying the order gateway has not answered yet
  const SILENT_MS = 5000; // as `automata order`: no answer within 5 s is said

  function showResult(cid) {
    const u = updates.get(cid);
    if (!u) {
      result.dataset.status = "sent";
      result.className = "";
      result.textContent = `${cid}: sent, waiting for the venue…`;
      clearTimeout(silence);
      silence = setTimeout(() => {
        if (placed !== cid || updates.has(cid)) return;
        result.dataset.status = "waiting";
        result.className = "neg";
        result.textContent = `${cid}: no answer within ${SILENT_MS / 1000} s — the order stays queued and the order gateway places it when it reads it (is it running? see Services on the overview)`;
      }, SILENT_MS);
      return;
    }
    clearTimeout(silence);
    const filled = u.cum_filled_qty && /[1-9]/.test(u.cum_filled_qty);
    // what filled and what it cost in all (an average price would need a division: not on floats)
    const avg = filled ? ` ${money(u.cum_filled_qty)} for ${money(u.cum_quote_qty, 4)} quote` : "";
    const why = u.reason ? ` — ${u.reason}` : "";
    result.dataset.status = u.status;
    result.className = u.status === "REJECTED" || u.status === "EXPIRED" ? "neg" : filled ? "pos" : "";
    result.textContent = `${cid}: ${u.status}${avg}${why}`;
  }

  async function orders() {
    const data = await A.get("/api/bots/manual/orders?limit=50");
    // the ledger's record of the order placed here, when the live feed missed its update (the
    // feed was down, or it had not found the manual orders' stream yet): its fate all the same
    const row = placed && data.orders.find((o) => o.cid === placed);
    const seen = placed && updates.get(placed);
    if (row && (!seen || (!OPEN.has(row.status) && OPEN.has(seen.status)))) {
      updates.set(placed, row);
      showResult(placed);
    }
    const open = data.orders.filter((o) => OPEN.has(o.status));
    const cols = [
      { key: "cid", label: "Order" },
      { key: "symbol", label: "Market", fmt: (v, r) => `${v} ${r.venue}` },
      { key: "side", label: "Side", cls: (v) => (v === "BUY" ? "pos" : "neg") },
      { key: "order_type", label: "Type", minor: true },
      { key: "price", label: "Price", num: true, fmt: (v) => money(v) },
      { key: "orig_qty", label: "Quantity", num: true, fmt: (v) => money(v) },
      { key: "cum_filled_qty", label: "Filled", num: true, fmt: (v) => money(v) },
      { key: "status", label: "Status", minor: true },
    ];
    table("manual-orders", [...cols, !A.readOnly && { key: "cid", label: "", fmt: (v) => A.cancelButton(v, false) }].filter(Boolean),
      open, { key: (r) => r.cid, empty: "no open manual order" });
    table("manual-history", [...cols, { key: "reason", label: "Reason", wrap: true, minor: true },
      { key: "updated_at", label: "Updated", fmt: time, minor: true }], data.orders.slice(0, 20),
      { key: (r) => r.cid, empty: "no manual order yet" });
    return data.orders;
  }

  // the ledger writes an order a moment after its update: refetch until it shows what the update said
  let known = [];
  const chase = A.chase(async () => (known = await orders()));
  const soon = A.throttle(() => orders().then((o) => (known = o)).catch((err) => A.say(`orders: ${err.message}`, "error")), 300);

  async function venues() {
    const data = await A.get("/api/balances");
    const names = [...new Set([...(data.accounts || []).map((a) => a.venue), ...(data.missing || [])])];
    const select = document.getElementById("order-venue");
    if (select && names.length) select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
  }

  if (form) {
    const type = document.getElementById("order-type");
    const unit = document.getElementById("order-unit");
    const priceLabel = document.getElementById("order-price-label");
    const sync = () => {
      const limit = type.value === "limit";
      priceLabel.hidden = !limit;
      document.getElementById("order-price").required = limit;
      if (limit) unit.value = "quantity"; // a limit order is sized in base
      unit.querySelector("option[value=quote_quantity]").disabled = limit;
    };
    type.addEventListener("change", sync);
    sync();
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const f = form.elements;
      const body = { side: f.side.value, symbol: f.symbol.value.trim().toUpperCase(), venue: f.venue.value };
      body[f.unit.value] = f.amount.value.trim(); // decimal text: sent as typed, never a float
      if (f.type.value === "limit") body.price = f.price.value.trim();
      const what = `${body.side.toLowerCase()} ${body.quantity || `${body.quote_quantity} quote of`} ${body.symbol}${body.price ? ` at ${body.price}` : " at market"}`;
      if (!window.confirm(`Place a manual order: ${what}?`)) return;
      const button = document.getElementById("order-submit");
      button.disabled = true;
      try {
        const sent = await A.post("/api/orders", body);
        placed = sent.cid;
        showResult(placed);
        // until the ledger has it ended (filled, refused...): a resting order is chased for the
        // chase's 15 s only, and without the live feed a first NEW row must not stop it
        const cid = placed;
        chase(() => known.some((o) => o.cid === cid && !OPEN.has(o.status)));
      } catch (err) {
        result.dataset.status = "refused";
        result.className = "neg";
        result.textContent = `refused: ${err.message}`;
      } finally {
        button.disabled = false;
      }
    });
  }

  const all = () => {
    soon();
    venues().catch(() => {});
  };
  A.live(
    {
      order: (u) => {
        if (u.bot !== "manual") return;
        updates.set(u.cid, u);
        if (updates.size > 500) updates.delete(updates.keys().next().value);
        if (u.cid === placed) showResult(placed);
        const status = u.status;
        chase(() => known.some((o) => o.cid === u.cid && o.status === status));
      },
    },
    all,
  );
  all();
})();
