// A hand-written SVG candle chart: candles, horizontal levels (open orders, the DCA ladder, grid
// levels), the fractal stop as a step line, fills and fractals as markers. SVG, not canvas: every
// mark is an element a test (and a screen reader) can find, and a few hundred candles are a few
// hundred nodes — light for a Pi's browser. Prices are floats here only to be drawn.
"use strict";

const Chart = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const PAD = { top: 10, right: 70, bottom: 22, left: 6 };

  function node(tag, attrs, text) {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  }

  // round-number price ticks covering [lo, hi]
  function ticks(lo, hi, count) {
    const raw = (hi - lo) / Math.max(count, 1);
    if (!(raw > 0)) return [lo];
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) out.push(v);
    return out;
  }

  function label(price) {
    const abs = Math.abs(price);
    const places = abs >= 1000 ? 1 : abs >= 1 ? 3 : 6;
    return price.toLocaleString("en-US", { maximumFractionDigits: places, minimumFractionDigits: 0 });
  }

  function hhmm(ms) {
    return new Date(ms).toISOString().slice(11, 16);
  }

  // data: {candles:[{t,o,h,l,c}], lines:[{price,cls,label}], marks:[{t,price,side,label}],
  //        stops:[{t,price}], fractals:[{t,price,dir}]}   (t in ms, prices as numbers)
  function draw(host, data) {
    const candles = data.candles || [];
    const width = Math.max(host.clientWidth || 600, 280);
    const height = width < 600 ? 260 : 380;
    const svg = node("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, width, height, role: "img" });
    if (candles.length === 0) {
      svg.append(node("text", { x: width / 2, y: height / 2, class: "axis", "text-anchor": "middle" }, "no candles yet"));
      host.replaceChildren(svg);
      return;
    }
    const t0 = candles[0].t;
    const span = candles.length > 1 ? candles[1].t - candles[0].t : 60000;
    const t1 = candles[candles.length - 1].t + span;
    // the price range: the candles, plus the levels and marks that fall near them
    let lo = Math.min(...candles.map((c) => c.l));
    let hi = Math.max(...candles.map((c) => c.h));
    const near = (p) => p > lo - (hi - lo) * 0.6 && p < hi + (hi - lo) * 0.6;
    const extra = [
      ...(data.lines || []).map((l) => l.price),
      ...(data.stops || []).map((s) => s.price),
      ...(data.marks || []).filter((m) => m.t >= t0).map((m) => m.price),
    ].filter((p) => Number.isFinite(p) && near(p));
    lo = Math.min(lo, ...extra);
    hi = Math.max(hi, ...extra);
    const margin = (hi - lo) * 0.04 || hi * 0.001 || 1;
    lo -= margin;
    hi += margin;
    const plotW = width - PAD.left - PAD.right;
    const plotH = height - PAD.top - PAD.bottom;
    const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * plotW;
    const y = (p) => PAD.top + ((hi - p) / (hi - lo)) * plotH;
    const inside = (p) => p >= lo && p <= hi;

    const grid = node("g", { class: "axis" });
    for (const p of ticks(lo, hi, Math.round(plotH / 45))) {
      grid.append(node("line", { x1: PAD.left, x2: PAD.left + plotW, y1: y(p), y2: y(p), class: "gridline" }));
      grid.append(node("text", { x: width - PAD.right + 4, y: y(p) + 4 }, label(p)));
    }
    const every = Math.max(1, Math.ceil(candles.length / Math.max(2, Math.floor(plotW / 70))));
    candles.forEach((c, i) => {
      if (i % every === 0) grid.append(node("text", { x: x(c.t), y: height - 6 }, hhmm(c.t)));
    });
    svg.append(grid);

    const levels = node("g", { class: "levels" });
    let lastLabel = -Infinity; // a label closer than 11 px to the one above is left out (dense grids)
    const shown = (data.lines || []).filter((l) => Number.isFinite(l.price) && inside(l.price));
    for (const line of shown.sort((a, b) => b.price - a.price)) {
      const g = node("g", { class: `level ${line.cls || ""}`, "data-price": line.price });
      g.append(node("line", { x1: PAD.left, x2: PAD.left + plotW, y1: y(line.price), y2: y(line.price) }));
      if (line.label && y(line.price) - lastLabel >= 11) {
        g.append(node("text", { x: PAD.left + 4, y: y(line.price) - 3 }, line.label));
        lastLabel = y(line.price);
      }
      g.append(node("title", {}, `${line.label || ""} ${label(line.price)}`.trim()));
      levels.append(g);
    }
    svg.append(levels);

    const body = node("g", { class: "candles" });
    const w = Math.max(1, (plotW / candles.length) * 0.7);
    for (const c of candles) {
      const up = c.c >= c.o;
      const cx = x(c.t) + (x(c.t + span) - x(c.t)) / 2;
      const g = node("g", { class: up ? "candle up" : "candle down" });
      g.append(node("line", { x1: cx, x2: cx, y1: y(c.h), y2: y(c.l) }));
      const top = y(Math.max(c.o, c.c));
      g.append(node("rect", { x: cx - w / 2, y: top, width: w, height: Math.max(1, y(Math.min(c.o, c.c)) - top) }));
      body.append(g);
    }
    svg.append(body);

    const stops = (data.stops || []).filter((s) => Number.isFinite(s.price));
    if (stops.length) {
      let d = "";
      stops.forEach((s, i) => {
        const sx = Math.max(PAD.left, x(s.t));
        const nx = i + 1 < stops.length ? Math.max(PAD.left, x(stops[i + 1].t)) : PAD.left + plotW;
        d += `${i ? "L" : "M"}${sx},${y(s.price)} L${nx},${y(s.price)} `;
      });
      svg.append(node("path", { d, class: "stopline" }));
    }

    const marks = node("g", { class: "marks" });
    for (const f of data.fractals || []) {
      if (f.t < t0 || !inside(f.price)) continue;
      const fx = x(f.t) + (x(f.t + span) - x(f.t)) / 2;
      const fy = f.dir === "up" ? y(f.price) - 6 : y(f.price) + 6;
      const pts = f.dir === "up" ? `${fx - 3},${fy} ${fx + 3},${fy} ${fx},${fy - 5}` : `${fx - 3},${fy} ${fx + 3},${fy} ${fx},${fy + 5}`;
      marks.append(node("polygon", { points: pts, class: `fractal ${f.dir}` }));
    }
    for (const m of data.marks || []) {
      if (m.t < t0 || !inside(m.price)) continue;
      const mx = Math.min(x(m.t), PAD.left + plotW);
      const my = y(m.price);
      const buy = m.side === "BUY";
      const pts = buy ? `${mx - 6},${my + 9} ${mx + 6},${my + 9} ${mx},${my}` : `${mx - 6},${my - 9} ${mx + 6},${my - 9} ${mx},${my}`;
      const g = node("g", { class: `fill ${buy ? "buy" : "sell"}`, "data-id": m.id });
      g.append(node("polygon", { points: pts }));
      g.append(node("title", {}, m.label || `${m.side} ${label(m.price)}`));
      marks.append(g);
    }
    svg.append(marks);

    const last = candles[candles.length - 1];
    // the last price on the axis, over the tick labels it may cover
    svg.append(node("rect", { x: width - PAD.right + 1, y: y(last.c) - 8, width: PAD.right - 2, height: 16, rx: 3, class: "lastbg" }));
    svg.append(node("text", { x: width - PAD.right + 4, y: y(last.c) + 4, class: "lastprice" }, label(last.c)));
    host.replaceChildren(svg);
  }

  // a chart that redraws itself when its box changes size (a phone turned sideways)
  function create(host) {
    let data = { candles: [] };
    const redraw = () => draw(host, data);
    if (window.ResizeObserver) {
      let width = host.clientWidth;
      new ResizeObserver(() => {
        if (host.clientWidth !== width) {
          width = host.clientWidth;
          redraw();
        }
      }).observe(host);
    }
    return {
      draw(next) {
        data = next;
        redraw();
      },
      get data() {
        return data;
      },
    };
  }

  return { create, draw };
})();
