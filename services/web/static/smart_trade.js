// The Trade page's smart-trade form: the terms of `automata trade buy|sell` posted as typed (text,
// never floats) to POST /api/smart-trades, which checks them (a 422 names the bad field), sends the
// TradeRequest to the manual bot and waits a few seconds for its decision and its entry's first
// update; the answer is shown as it came.
"use strict";

(() => {
  const form = document.getElementById("smart-form");
  const result = document.getElementById("smart-result");
  if (!form) return; // read-only
  const TEXT = ["quote", "qty", "price", "tp", "sl", "stop", "trailing", "trailing_tp", "time_limit", "bot"];

  function show(status, cls, text) {
    result.dataset.status = status;
    result.className = cls;
    result.textContent = text;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = form.elements;
    // wait: the most the API waits for the bot's answer and its entry's first update (seconds)
    const body = { side: f.side.value, symbol: f.symbol.value.trim().toUpperCase(), break_even: f.break_even.checked, wait: 10 };
    for (const name of TEXT) {
      const value = f[name].value.trim();
      if (value) body[name] = value;
    }
    if (body.side === "sell") for (const name of TEXT) if (name !== "bot") delete body[name];
    if (body.side === "sell") body.break_even = false;
    // the confirm names the terms as typed, as the CLI's line reads (quote 50 tp 2% sl 1%)
    const terms = TEXT.filter((name) => body[name]).map((name) => `${name.replace("_", " ")} ${body[name]}`);
    if (body.break_even) terms.push("break even");
    const what = body.side === "sell" ? "close it at market" : terms.join(" ");
    if (!window.confirm(`Send a smart trade: ${body.side} ${body.symbol} ${what}?`)) return;
    const button = document.getElementById("smart-submit");
    button.disabled = true;
    show("sending", "dim", "sending…");
    try {
      const sent = await A.post("/api/smart-trades", body);
      const said = sent.answer || `${sent.trade}: sent to ${sent.bot}, no answer yet (is its runner running?)`;
      // the order's fate; its cid only when the bot's answer did not name it already
      const order = sent.cid && !said.includes(sent.cid) ? ` ${sent.cid}` : "";
      const entry = sent.cid ? ` —${order}${sent.status ? ` ${sent.status}` : ""}${sent.reason ? ` (${sent.reason})` : ""}` : "";
      const bad = sent.outcome === "refused" || sent.outcome === "duplicate" || sent.status === "REJECTED";
      show(sent.outcome, bad ? "neg" : sent.outcome === "waiting" ? "" : "pos", `${said}${entry}`);
    } catch (err) {
      show("refused", "neg", `refused: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  });
})();
