// Sellthrough live dashboard: reads the query-api JSON APIs with the token the user pasted (analyst, admin,
// regional manager or distributor), drills from the top of the token's scope (national > zone > region >
// distributor > outlet), and polls every 3 s. No dependencies.
"use strict";

const LEVELS = ["national", "zone", "region", "distributor", "outlet"];
const POLL_MS = 3000;
const TOKEN_KEY = "sellthrough.token";
const OPTIONAL = [
  "/v1/kpis", "/v1/sales/by", "/v1/outlets/ranking", "/v1/forecasts", "/v1/anomalies", "/v1/outlets/map",
];

const state = {
  path: [{ level: "national", id: null, name: "National" }],
  scope: null,
  filters: { brand: "", sku: "", from: "", to: "", rep: "", channel: "", outlet_class: "" },
  optional: {},
  generation: 0,
  timer: null,
  rendered: {},
};

const $ = (id) => document.getElementById(id);
// Money and counts in the user's grouping (Indian or international) and the responses' currency: money.js.
const fmtMoney = (v) => Money.full(v);
const fmtCount = (v) => Money.count(v);
const esc = (s) =>
  String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

class AuthError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

async function api(path, params = {}) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") query.set(k, v);
  const qs = query.toString();
  const response = await fetch(path + (qs ? "?" + qs : ""), {
    headers: { Authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY), Accept: "application/json" },
  });
  if (response.status === 401 || response.status === 403) {
    let detail = "";
    try { detail = (await response.json()).title || ""; } catch (e) { /* not JSON */ }
    throw new AuthError(
      response.status === 401
        ? `The token was refused (401${detail ? ": " + detail : ""}). Paste a valid analyst token.`
        : "This token is valid but its role may not read the dashboard data (403). Use an analyst token.",
      response.status,
    );
  }
  if (!response.ok) {
    const error = new Error(`${path}: HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

// ---- drill scope -------------------------------------------------------------------------------------------
const current = () => state.path[state.path.length - 1];
const parentOf = (node) => (node.level === "national" ? null : node.id);
function salesScope() {
  const node = current();
  if (node.level === "outlet") {
    const distributor = state.path[state.path.length - 2];
    return { level: "outlet", parent_id: distributor.id, outlet: node.id };
  }
  return { level: LEVELS[LEVELS.indexOf(node.level) + 1], parent_id: parentOf(node) };
}
function stockScope(scope) {
  // Stock levels stop at the distributor; below it, rows are per SKU of that distributor.
  return scope.level === "outlet" ? { level: "sku", parent_id: scope.parent_id } : scope;
}
const salesFilters = () => ({
  from: state.filters.from, to: state.filters.to, brand: state.filters.brand, sku: state.filters.sku,
});

// Channel and outlet class narrow the sales reads that take them (/v1/sales, /v1/kpis, /v1/sales/by); stock,
// alerts and primary sales belong to distributors, not to outlets, and stay whole.
const segmentFilters = () => ({ channel: state.filters.channel, outlet_class: state.filters.outlet_class });

async function loadSegmentOptions() {
  // The channels and classes that sold in the period, as suggestions for the two filter inputs.
  if (!state.optional["/v1/sales/by"]) return;
  const f = salesFilters();
  for (const [dimension, list] of [["channel", "channel-options"], ["outlet_class", "outlet-class-options"]]) {
    try {
      const body = await api("/v1/sales/by", { dimension, from: f.from, to: f.to, limit: 200 });
      $(list).innerHTML = body.rows.filter((r) => r.id !== null).map((r) => `<option value="${esc(r.id)}">`).join("");
    } catch (e) { if (e instanceof AuthError) throw e; }
  }
}

// ---- data --------------------------------------------------------------------------------------------------
async function optionalApi(path, params) {
  if (!state.optional[path]) return null;
  try { return await api(path, params); } catch (e) { if (e instanceof AuthError) throw e; return null; }
}

function cellScope() {
  // The drill path as the filters of the one-request reads: /v1/sales/daily, /v1/sales/events and the outlet page.
  const node = current();
  return node.level === "national" ? {} : { [node.level]: node.id };
}

async function load() {
  const scope = salesScope();
  const stock = stockScope(scope);
  const f = salesFilters();
  const [sales, stockBody, pvs, alerts, schemes] = await Promise.all([
    api("/v1/sales", { level: scope.level, parent_id: scope.parent_id, ...f, ...segmentFilters(), limit: 5000 }),
    api("/v1/stock", { level: stock.level, parent_id: stock.parent_id, brand: f.brand, sku: f.sku }),
    api("/v1/primary-vs-secondary", { level: stock.level, parent_id: stock.parent_id, ...f }),
    api("/v1/alerts", { level: stock.level, parent_id: stock.parent_id, brand: f.brand, sku: f.sku }),
    // Scheme figures are national: only a national scope reads them.
    state.scope && state.scope.national ? api("/v1/schemes") : Promise.resolve(null),
  ]);
  Money.useCurrencyOf(sales);
  const data = { scope, sales, stock: stockBody, pvs, alerts, schemes };
  data.trend = await loadTrend(sales.date_to);
  if (scope.outlet) {
    // The retailer's page: its SKU mix and its orders, returns and visits, one request each.
    [data.bySku, data.activity] = await Promise.all([
      api("/v1/sales/by", { dimension: "sku", within: scope.outlet, ...f, ...segmentFilters(), limit: 500 }),
      api(`/v1/outlets/${encodeURIComponent(scope.outlet)}/activity`, { from: f.from, to: f.to, limit: 50 }),
    ]);
  }
  data.kpis = await optionalApi("/v1/kpis", {
    level: scope.level, parent_id: scope.parent_id, ...f, ...segmentFilters(), rep: state.filters.rep, limit: 5000,
  });
  // The map follows the drill scope: under a zone, region or distributor (an outlet's distributor), or national.
  data.map = await optionalApi("/v1/outlets/map", { within: scope.parent_id, ...f, limit: 5000 });
  return data;
}

function outletRow(body, outletId) {
  return body.rows.find((r) => r.id === outletId) || { id: outletId, value: "0", units: 0, lines: 0 };
}

async function loadTrend(dateTo) {
  // The 14 days to the end date, in one request for the current drill cell.
  const end = new Date(dateTo + "T00:00:00Z");
  const from = new Date(end.getTime() - 13 * 86400000).toISOString().slice(0, 10);
  const f = salesFilters();
  const body = await api("/v1/sales/daily", { ...cellScope(), brand: f.brand, sku: f.sku, from, to: dateTo });
  return body.days.map((d) => ({ day: d.day, value: Number(d.value) }));
}

// ---- rendering ---------------------------------------------------------------------------------------------
function setIfChanged(id, html) {
  // Replaces a block only when its content changed, and highlights the figures that changed.
  if (state.rendered[id] === html) return;
  const el = $(id);
  const before = new Map([...el.querySelectorAll("[data-flash]")].map((n) => [n.dataset.testid, n.textContent]));
  el.innerHTML = html;
  if (state.rendered[id] !== undefined) {
    el.querySelectorAll("[data-flash]").forEach((n) => {
      if (before.has(n.dataset.testid) && before.get(n.dataset.testid) !== n.textContent) n.classList.add("flash");
    });
  }
  state.rendered[id] = html;
}

function renderCrumbs() {
  const items = state.path.map((node, i) => {
    const label = `${esc(node.name)}<span class="sr-only"> (${node.level})</span>`;
    return i === state.path.length - 1
      ? `<li aria-current="page" data-testid="crumb-${node.level}">${label}</li>`
      : `<li><button type="button" data-crumb="${i}" data-testid="crumb-${node.level}">${label}</button></li>`;
  });
  $("crumbs").innerHTML = items.join("");
}

function card(key, label, value) {
  return `<div><dt>${esc(label)}</dt><dd data-testid="card-${key}" data-flash>${esc(value)}</dd></div>`;
}

function moneyCard(key, label, value) {
  // A tile: lakh / crore (or K / M) on its face, every digit in its tooltip and data-full.
  const full = fmtMoney(value);
  return `<div><dt>${esc(label)}</dt><dd data-testid="card-${key}" data-flash data-full="${esc(full)}"` +
    ` title="${esc(full)}">${esc(Money.short(value))}</dd></div>`;
}

function renderCards(d) {
  const s = d.scope.outlet ? outletRow(d.sales, d.scope.outlet) : d.sales.total;
  const primary = d.pvs.rows.reduce(
    (a, r) => ({ value: a.value + Number(r.primary_value), units: a.units + r.primary_units }), { value: 0, units: 0 });
  const schemes = d.schemes ? d.schemes.schemes : [];
  const cost = schemes.reduce((a, r) => a + Number(r.cost), 0);
  const over = schemes.reduce((a, r) => a + Number(r.over_claim), 0);
  const below = d.scope.outlet ? " (distributor)" : "";
  setIfChanged("cards", [
    moneyCard("secondary-value", "Secondary sales value", s.value),
    card("secondary-units", "Secondary units", fmtCount(s.units)),
    card("secondary-lines", "Order lines", fmtCount(s.lines)),
    moneyCard("primary-value", "Primary (sell-in) value" + below, primary.value),
    card("primary-units", "Primary units" + below, fmtCount(primary.units)),
    card("stock-units", "Stock on hand, units" + below, fmtCount(d.stock.total.on_hand)),
    moneyCard("stock-value", "Stock value" + below, d.stock.total.value),
    card("alerts", "Stock alerts" + below, fmtCount(d.alerts.total)),
    ...(d.schemes ? [
      moneyCard("scheme-cost", "Scheme cost (all schemes)", cost),
      moneyCard("scheme-overclaim", "Over-claimed (all schemes)", over),
    ] : []),
  ].join(""));
  const f = d.sales;
  $("status").textContent =
    `Live: ${f.date_from} to ${f.date_to}; updated ${new Date().toLocaleTimeString()}` +
    (f.freshness.newest_recorded_at ? `; newest order recorded ${new Date(f.freshness.newest_recorded_at).toLocaleString()}` : "");
}

function renderRows(d) {
  const scope = d.scope;
  const note = $("outlet-note");
  let rows;
  let heading;
  if (scope.outlet) {
    rows = d.bySku.rows.filter((r) => r.lines > 0 || Number(r.value) !== 0);
    heading = "SKU";
    note.hidden = false;
    note.textContent =
      "Retailer page: this outlet's net sales per SKU (returns included); primary value, stock units and alerts " +
      "are its distributor's for that SKU.";
  } else {
    rows = d.sales.rows;
    heading = scope.level[0].toUpperCase() + scope.level.slice(1);
    note.hidden = true;
  }
  $("rows-title").textContent = scope.outlet
    ? `Sales by SKU at ${current().name}`
    : `${heading === "Outlet" ? "Outlets" : heading + "s"} in ${current().name} (click a name to drill down)`;
  const stockById = Object.fromEntries(d.stock.rows.map((r) => [r.id, r]));
  const pvsById = Object.fromEntries(d.pvs.rows.map((r) => [r.id, r]));
  const alertsById = Object.fromEntries(d.alerts.rows.map((r) => [r.id, r]));
  const body = rows.map((r) => {
    const key = esc(r.id ?? "unassigned");
    const name = esc(r.name ?? r.id);
    const drillable = !scope.outlet && r.id !== null;
    const cell = drillable
      ? `<button type="button" class="drill" data-drill="${esc(r.id)}" data-name="${name}" data-testid="drill-${key}">${name}</button>`
      : name;
    const st = stockById[r.id], pv = pvsById[r.id], al = alertsById[r.id];
    return `<tr data-testid="row-${key}"><th scope="row">${cell}</th>` +
      `<td class="num" data-testid="value-${key}" data-flash>${fmtMoney(r.value)}</td>` +
      `<td class="num" data-testid="units-${key}" data-flash>${fmtCount(r.units)}</td>` +
      `<td class="num" data-testid="lines-${key}" data-flash>${fmtCount(r.lines)}</td>` +
      `<td class="num">${pv ? fmtMoney(pv.primary_value) : "–"}</td>` +
      `<td class="num">${st ? fmtCount(st.on_hand) : "–"}</td>` +
      `<td class="num">${al ? fmtCount(al.alerts) : "–"}</td></tr>`;
  });
  const empty = `<tr><td colspan="7">No sales in this period${scope.outlet ? " for the SKUs known" : ""}.</td></tr>`;
  setIfChanged("rows",
    `<table data-testid="rows-table" data-level="${scope.outlet ? "sku" : scope.level}">` +
    `<caption class="sr-only">${heading} rows</caption><thead><tr>` +
    `<th scope="col">${heading}</th><th scope="col" class="num">Secondary value</th>` +
    `<th scope="col" class="num">Units</th><th scope="col" class="num">Lines</th>` +
    `<th scope="col" class="num">Primary value</th><th scope="col" class="num">Stock units</th>` +
    `<th scope="col" class="num">Alerts</th></tr></thead><tbody>${body.join("") || empty}</tbody></table>`);
  renderBars(rows);
}

function renderBars(rows) {
  const top = rows.filter((r) => Number(r.value) > 0).slice(0, 12);
  if (!top.length) return setIfChanged("bars", `<p class="note">No sales to chart.</p>`);
  const max = Math.max(...top.map((r) => Number(r.value)));
  const rowH = 22, labelW = 130, width = 480, barW = width - labelW - 90;
  const bars = top.map((r, i) => {
    const w = Math.max(1, (Number(r.value) / max) * barW), y = i * rowH;
    return `<text x="0" y="${y + 15}">${esc(String(r.name ?? r.id).slice(0, 22))}</text>` +
      `<rect x="${labelW}" y="${y + 4}" width="${w.toFixed(1)}" height="14" fill="#3b82f6"><title>${esc(r.name)}: ${fmtMoney(r.value)}</title></rect>` +
      `<text x="${labelW + w + 4}" y="${y + 15}">${fmtMoney(r.value)}</text>`;
  });
  setIfChanged("bars", `<svg role="img" aria-label="Secondary sales value per row" viewBox="0 0 ${width} ${top.length * rowH}" width="100%">${bars.join("")}</svg>`);
}

function renderTrend(points) {
  const width = 480, height = 140, pad = 28;
  const max = Math.max(1, ...points.map((p) => p.value));
  const x = (i) => pad + (i * (width - 2 * pad)) / (points.length - 1);
  const y = (v) => height - pad - (v / max) * (height - 2 * pad);
  const line = points.map((p, i) => `${x(i).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
  const dots = points.map((p, i) =>
    `<circle cx="${x(i).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="3" fill="#0f766e"><title>${p.day}: ${fmtMoney(p.value)}</title></circle>`).join("");
  const labels = [0, points.length - 1].map((i) =>
    `<text x="${x(i)}" y="${height - 8}" text-anchor="middle">${points[i].day.slice(5)}</text>`).join("");
  setIfChanged("trend",
    `<svg role="img" aria-label="Secondary sales value per day" viewBox="0 0 ${width} ${height}" width="100%">` +
    `<line x1="${pad}" y1="${height - pad}" x2="${width - pad}" y2="${height - pad}" stroke="#999"/>` +
    `<text x="${pad}" y="12">max ${fmtMoney(max)}</text>` +
    `<polyline points="${line}" fill="none" stroke="#0f766e" stroke-width="2"/>${dots}${labels}</svg>`);
}

function renderAlerts(alerts) {
  const rows = alerts.alerts.slice(0, 50).map((a) =>
    `<tr><td>${esc(a.distributor_name ?? a.distributor_id)}</td><td>${esc(a.sku_name ?? a.sku_id)}</td>` +
    `<td class="kind-${esc(a.kind)}">${esc(a.kind.replace("_", " "))}</td><td class="num">${fmtCount(a.on_hand)}</td>` +
    `<td class="num">${a.days_of_cover === null ? "–" : a.days_of_cover.toFixed(1)}</td></tr>`);
  setIfChanged("alerts", rows.length
    ? `<table><thead><tr><th scope="col">Distributor</th><th scope="col">SKU</th><th scope="col">Alert</th>` +
      `<th scope="col" class="num">On hand</th><th scope="col" class="num">Days of cover</th></tr></thead>` +
      `<tbody>${rows.join("")}</tbody></table>`
    : `<p class="note">No stock alerts raised here.</p>`);
}

function renderSchemes(body) {
  if (!body) {
    setIfChanged("schemes", `<p class="note">Scheme figures are national: analyst and admin tokens read them.</p>`);
    return;
  }
  const rows = body.schemes.map((s) =>
    `<tr><th scope="row">${esc(s.name)}</th><td class="num">${fmtCount(s.outlets_reached)}</td>` +
    `<td class="num">${fmtCount(s.orders)}</td><td class="num">${fmtCount(s.units)}</td>` +
    `<td class="num">${fmtMoney(s.cost)}</td><td class="num">${fmtMoney(s.claimed)}</td>` +
    `<td class="num">${fmtMoney(s.over_claim)}</td></tr>`);
  setIfChanged("schemes", rows.length
    ? `<table><thead><tr><th scope="col">Scheme</th><th scope="col" class="num">Outlets</th>` +
      `<th scope="col" class="num">Orders</th><th scope="col" class="num">Units</th><th scope="col" class="num">Cost</th>` +
      `<th scope="col" class="num">Claimed</th><th scope="col" class="num">Over-claim</th></tr></thead>` +
      `<tbody>${rows.join("")}</tbody></table>`
    : `<p class="note">No schemes launched yet.</p>`);
}

const KPI_FIELDS = [
  ["value_change_pct", "Value vs previous period", (v) => (v === null ? "–" : `${v > 0 ? "+" : ""}${v.toFixed(1)} %`)],
  ["orders", "Orders (productive calls)", fmtCount],
  ["lines_per_call", "Lines per call", (v) => (v === null ? "–" : v.toFixed(2))],
  ["visits", "Visits", fmtCount],
  ["strike_rate", "Strike rate", (v) => (v === null ? "–" : `${(v * 100).toFixed(1)} %`)],
  ["active_outlets", "Active outlets", fmtCount],
  ["dormant_outlets", "Dormant outlets", fmtCount],
  ["fill_rate", "Fill rate", (v) => (v === null ? "–" : `${(v * 100).toFixed(1)} %`)],
];

function renderExtra(d) {
  // Optional: /v1/kpis when this server has it (rep filter too); other newer endpoints are only listed.
  const present = OPTIONAL.filter((p) => state.optional[p]);
  $("extra-section").hidden = !present.length;
  $("rep-filter").hidden = !state.optional["/v1/kpis"];
  if (!present.length) return;
  let figures = d.kpis ? d.kpis.total : null;
  if (d.kpis && d.scope.outlet) figures = d.kpis.rows.find((r) => r.id === d.scope.outlet) || null;
  const cards = figures
    ? KPI_FIELDS.filter(([k]) => k in figures)
        .map(([k, label, fmt]) => card(`kpi-${k.replaceAll("_", "-")}`, label, fmt(figures[k]))).join("")
    : "";
  setIfChanged("extra", (cards ? `<dl class="cards">${cards}</dl>` : "") +
    `<p class="note">KPIs from /v1/kpis for this scope${state.filters.rep ? " and rep " + esc(state.filters.rep) : ""}. ` +
    `Also on this server: ${present.map(esc).join(", ")}.</p>`);
}

// Sequential scale (light yellow to dark purple) for outlets that sold; grey for dormant ones (nothing sold).
const MAP_SCALE = ["#fde725", "#7ad151", "#22a884", "#2a788e", "#414487", "#440154"];
const DORMANT = "#b0b4bb";
function mapColour(value, max) {
  if (!(value > 0)) return DORMANT;
  const t = max > 0 ? Math.min(1, value / max) : 1;
  const pos = t * (MAP_SCALE.length - 1), i = Math.min(MAP_SCALE.length - 2, Math.floor(pos)), k = pos - i;
  const rgb = (hex) => [1, 3, 5].map((j) => parseInt(hex.slice(j, j + 2), 16));
  const a = rgb(MAP_SCALE[i]), b = rgb(MAP_SCALE[i + 1]);
  return "#" + a.map((c, j) => Math.round(c + (b[j] - c) * k).toString(16).padStart(2, "0")).join("");
}

function mapBox(body) {
  // The area the map fits: the outlets' bounding box, widened to the regions' outlines from national down to a
  // region (they frame the outlets); under a distributor or an outlet only its outlets, the outline clipped.
  const b = { ...body.bounds };
  if (["distributor", "outlet"].includes(current().level)) return b;
  for (const region of body.regions || []) {
    for (const ring of region.outline || []) {
      for (const [lon, lat] of ring) {
        b.min_lon = Math.min(b.min_lon, lon); b.max_lon = Math.max(b.max_lon, lon);
        b.min_lat = Math.min(b.min_lat, lat); b.max_lat = Math.max(b.max_lat, lat);
      }
    }
  }
  return b;
}

function mapOutlines(regions, x, y) {
  // Region outlines under the dots: the brand's own (GeographyDefined) solid, a convex hull of the outlets dashed.
  const paths = (regions || []).filter((r) => r.outline).map((r) => {
    const d = r.outline.map((ring) =>
      "M" + ring.map(([lon, lat]) => `${x(lon).toFixed(1)},${y(lat).toFixed(1)}`).join("L") + "Z").join("");
    const how = r.outline_source === "defined" ? "outline" : "outline drawn from its outlets (convex hull)";
    return `<path data-testid="map-outline" data-region="${esc(r.id)}" data-source="${esc(r.outline_source)}"` +
      ` class="outline ${r.outline_source === "defined" ? "defined" : "hull"}" d="${d}">` +
      `<title>${esc(r.name)}: ${how}</title></path>`;
  });
  return `<g data-testid="map-outlines" clip-path="url(#map-clip)">${paths.join("")}</g>`;
}

function mapOutlineNote(regions) {
  // Says which outlines are not the brand's own, so a dashed shape is not read as a boundary.
  const hulls = (regions || []).filter((r) => r.outline_source === "outlets_hull").map((r) => esc(r.name));
  const none = (regions || []).filter((r) => r.outline_source === "none").map((r) => esc(r.name));
  const notes = [];
  if (hulls.length) {
    notes.push(`No outline in the brand's geography for ${hulls.join(", ")}: the dashed shape is the convex hull ` +
      "of its outlets.");
  }
  if (none.length) notes.push(`No outline for ${none.join(", ")} (none defined, fewer than three outlets located).`);
  return notes.length ? `<p class="note" data-testid="map-outline-note">${notes.join(" ")}</p>` : "";
}

function renderMap(d) {
  const body = d.map;
  $("map-panel").hidden = !state.optional["/v1/outlets/map"];
  if (!body) return;
  $("map-title").textContent = `Outlets by secondary sales in ${current().name}`;
  if (!body.outlets.length || !body.bounds) {
    return setIfChanged("map", `<p class="note" data-testid="map-empty">No outlets with coordinates here.</p>`);
  }
  // Equirectangular projection: x from longitude (shrunk by cos of the mean latitude), y from latitude, fitted
  // into the plot area with the same scale on both axes. A single point (or a line) gets a minimum span.
  const width = 480, height = 300, pad = 16, legendH = 34;
  const b = mapBox(body);
  const k = Math.cos((((b.min_lat + b.max_lat) / 2) * Math.PI) / 180);
  const spanX = Math.max((b.max_lon - b.min_lon) * k, 0.01), spanY = Math.max(b.max_lat - b.min_lat, 0.01);
  const plotW = width - 2 * pad, plotH = height - legendH - 2 * pad;
  const scale = Math.min(plotW / spanX, plotH / spanY);
  const offX = pad + (plotW - ((b.max_lon - b.min_lon) * k) * scale) / 2;
  const offY = pad + (plotH - (b.max_lat - b.min_lat) * scale) / 2;
  const x = (lon) => offX + (lon - b.min_lon) * k * scale;
  const y = (lat) => offY + (b.max_lat - lat) * scale;
  const max = Number(body.max_value);
  // Paint order is SVG document order: dormant outlets first (small grey dots), then sellers from the smallest to
  // the best, so a seller is never hidden under a dormant outlet and the best sellers are on top where they cluster.
  const rank = (o) => (Number(o.value) > 0 ? Number(o.value) : -Infinity);
  const outlets = [...body.outlets].sort((p, q) => rank(p) - rank(q) || (p.id < q.id ? -1 : 1));
  const dots = outlets.map((o) => {
    const v = Number(o.value), dormant = !(v > 0);
    return `<circle data-testid="map-dot" data-outlet="${esc(o.id)}" data-value="${esc(o.value)}"` +
      ` data-dormant="${dormant}" class="${dormant ? "dormant" : "sold"}" cx="${x(o.lon).toFixed(1)}"` +
      ` cy="${y(o.lat).toFixed(1)}" r="${dormant ? 3.5 : 5.5}" fill="${mapColour(v, max)}">` +
      `<title>${esc(o.name)}: ${dormant ? "no sales" : fmtMoney(o.value)}</title></circle>`;
  }).join("");
  const ly = height - legendH + 8, lx = pad, barW = 200;
  const stops = MAP_SCALE.map((c, i) => `<stop offset="${(i / (MAP_SCALE.length - 1)).toFixed(2)}" stop-color="${c}"/>`).join("");
  const legend =
    `<g data-testid="map-legend"><defs><linearGradient id="map-scale">${stops}</linearGradient></defs>` +
    `<rect x="${lx}" y="${ly}" width="${barW}" height="10" fill="url(#map-scale)"/>` +
    `<text x="${lx}" y="${ly + 22}">&gt; 0</text>` +
    `<text x="${lx + barW}" y="${ly + 22}" text-anchor="end">${fmtMoney(max)}</text>` +
    `<circle cx="${lx + barW + 24}" cy="${ly + 5}" r="4" fill="${DORMANT}" class="dormant"/>` +
    `<text x="${lx + barW + 32}" y="${ly + 9}">no sales (dormant)</text></g>`;
  const shown = body.outlets.length < body.total_outlets
    ? `<p class="note">Showing the ${fmtCount(body.outlets.length)} best-selling of ${fmtCount(body.total_outlets)} outlets.</p>`
    : "";
  const frame = { x: 2, y: 2, w: width - 4, h: plotH + 2 * pad - 4 };
  setIfChanged("map",
    `<svg role="img" aria-label="Map of ${fmtCount(body.outlets.length)} outlets coloured by secondary sales value"` +
    ` viewBox="0 0 ${width} ${height}" width="100%" data-count="${body.outlets.length}">` +
    `<defs><clipPath id="map-clip"><rect x="${frame.x}" y="${frame.y}" width="${frame.w}" height="${frame.h}"/></clipPath></defs>` +
    `<rect x="${frame.x}" y="${frame.y}" width="${frame.w}" height="${frame.h}" fill="none" stroke="#e3e6ea"/>` +
    `${mapOutlines(body.regions, x, y)}<g data-testid="map-dots">${dots}</g>${legend}</svg>` +
    `${mapOutlineNote(body.regions)}${shown}`);
}

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");

function renderOutletPage(d) {
  $("outlet-page").hidden = !d.scope.outlet;
  if (!d.scope.outlet) return;
  const a = d.activity;
  const o = a.outlet;
  $("outlet-title").textContent = `${o.name ?? o.outlet_id}: orders, returns and visits`;
  const info = [o.channel, o.outlet_class && `class ${o.outlet_class}`, o.distributor_name ?? o.distributor_id]
    .filter(Boolean).map(esc).join(" · ");
  const orders = a.orders.map((r) => {
    const lines = r.lines.map((l) =>
      `${esc(l.sku_id)} × ${fmtCount(l.ordered_units)}` + (r.status === "delivered" ? ` (delivered ${fmtCount(l.delivered_units)})` : ""));
    const status = r.status === "cancelled"
      ? `cancelled ${esc(when(r.cancelled_at))}${r.cancel_reason ? ": " + esc(r.cancel_reason) : ""}` : esc(r.status);
    return `<tr data-testid="outlet-order" data-status="${esc(r.status)}"><td>${esc(when(r.occurred_at))}</td>` +
      `<td>${esc(r.order_id)}</td><td>${esc(r.rep_id)}</td><td>${lines.join("<br>")}</td>` +
      `<td class="num">${fmtMoney(r.ordered_value)}</td><td class="status-${esc(r.status)}">${status}</td></tr>`;
  });
  const returns = a.returns.map((r) =>
    `<tr data-testid="outlet-return"><td>${esc(when(r.occurred_at))}</td><td>${esc(r.return_id)}</td>` +
    `<td>${esc(r.reason)}</td><td>${r.lines.map((l) => `${esc(l.sku_id)} × ${fmtCount(l.units)}`).join("<br>")}</td>` +
    `<td class="num">${fmtMoney(r.value)}</td></tr>`);
  const visits = a.visits.map((v) =>
    `<tr data-testid="outlet-visit"><td>${esc(when(v.occurred_at))}</td><td>${esc(v.rep_id)}</td>` +
    `<td>${v.productive ? "order" : "no order"}</td><td>${esc(v.no_order_reason ?? "")}</td></tr>`);
  const table = (head, rows, empty) => rows.length
    ? `<table><thead><tr>${head.map((h) => `<th scope="col">${h}</th>`).join("")}</tr></thead><tbody>${rows.join("")}</tbody></table>`
    : `<p class="note">${empty}</p>`;
  setIfChanged("outlet-activity",
    `<p class="note" data-testid="outlet-info">${info}</p>` +
    `<h3>Orders</h3>` + table(["Captured", "Order", "Rep", "Lines", "Value", "Status"], orders, "No orders in this period.") +
    `<h3>Returns</h3>` + table(["Recorded", "Return", "Reason", "Lines", "Value"], returns, "No returns in this period.") +
    `<h3>Visits</h3>` + table(["When", "Rep", "Outcome", "No-order reason"], visits, "No visits recorded in this period."));
}

function render(d) {
  renderCrumbs();
  renderCards(d);
  renderRows(d);
  renderTrend(d.trend);
  renderAlerts(d.alerts);
  renderSchemes(d.schemes);
  renderExtra(d);
  renderMap(d);
  renderOutletPage(d);
}

// ---- control -----------------------------------------------------------------------------------------------
function showLogin(message) {
  clearTimeout(state.timer);
  $("app").hidden = true;
  $("login").hidden = false;
  $("status").textContent = "Not connected.";
  const error = $("auth-error");
  error.hidden = !message;
  error.textContent = message || "";
}

async function refresh() {
  const generation = ++state.generation;
  clearTimeout(state.timer);
  if (document.hidden) return; // no polling in a background tab; visibilitychange resumes it
  try {
    const data = await load();
    if (generation !== state.generation) return;
    render(data);
  } catch (e) {
    if (generation !== state.generation) return;
    if (e instanceof AuthError) return showLogin(e.message);
    $("status").textContent = `Could not refresh (${e.message}); retrying.`;
  }
  state.timer = setTimeout(refresh, POLL_MS);
}

async function detectOptional() {
  // Newer endpoints are used only where this server has them: 404 means absent; 422 (missing params) present.
  await Promise.all(OPTIONAL.map(async (path) => {
    try { await api(path); state.optional[path] = true; } catch (e) {
      if (e instanceof AuthError && e.status === 401) throw e;
      // 403 without parameters: the route exists, the bare request is outside a scoped token's territory.
      state.optional[path] = e.status !== undefined && e.status !== 404 && e.status !== 405;
    }
  }));
}

async function connect() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("auth-error").hidden = true;
  state.rendered = {};
  try {
    await startAtScope();
    await detectOptional();
    await loadSegmentOptions();
  } catch (e) { if (e instanceof AuthError) return showLogin(e.message); }
  await refresh();
}

const LEVEL_ABOVE = { zone: "national", region: "zone", distributor: "region" };
const ROLE_NAMES = { analyst: "Analyst", admin: "Admin", regional_manager: "Regional manager", distributor: "Distributor" };

async function startAtScope() {
  // The drill path starts at the token's own scope: a region manager's region, a distributor's own figures.
  let scope = null;
  try { scope = await api("/v1/scope"); } catch (e) {
    if (e instanceof AuthError) throw e;
    if (e.status !== 404) throw e; // an older server without /v1/scope reads nationally
  }
  state.scope = scope || { role: "analyst", subject: "", national: true, top_level: "national", roots: [] };
  if (scope && !scope.reads_dashboard) {
    throw new AuthError(
      `This token is valid but its role (${scope.role}) may not read the dashboard data (403). ` +
      "Use an analyst, regional manager or distributor token.", 403);
  }
  const s = state.scope;
  if (s.national) {
    state.path = [{ level: "national", id: null, name: "National" }];
  } else if (s.roots.length === 1) {
    const root = s.roots[0];
    state.path = [{ level: s.top_level, id: root.id, name: root.name || root.id }];
  } else {
    // Several roots: a node above them without an id; the rows below it are narrowed to the scope by the API.
    state.path = [{ level: LEVEL_ABOVE[s.top_level], id: null, name: "Your scope" }];
  }
  const where = s.national ? "national" : s.roots.map((r) => `${r.name || r.id} (${r.id})`).join(", ");
  $("scope-owner").textContent = `${ROLE_NAMES[s.role] || s.role} ${s.subject}: ${where}`;
  $("scope-owner").dataset.role = s.role;
  renderCrumbs();
}

function drillTo(node) {
  state.path.push(node);
  state.rendered = {};
  renderCrumbs();
  refresh();
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  connect();
});
$("forget").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); showLogin(""); });
$("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const period = `${state.filters.from}|${state.filters.to}`;
  for (const key of Object.keys(state.filters)) state.filters[key] = String(form.get(key) || "").trim();
  state.rendered = {};
  // The suggestions are the channels and classes that sold in the period: a new period, new suggestions.
  if (`${state.filters.from}|${state.filters.to}` !== period) loadSegmentOptions().catch(() => {});
  refresh();
});
$("rows").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-drill]");
  if (!button) return;
  const level = salesScope().level;
  drillTo({ level, id: button.dataset.drill, name: button.dataset.name });
});
$("crumbs").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-crumb]");
  if (!button) return;
  state.path = state.path.slice(0, Number(button.dataset.crumb) + 1);
  state.rendered = {};
  renderCrumbs();
  refresh();
});

function setUpGrouping() {
  // The number grouping switch: applied at once, remembered in localStorage for the next visit (money.js).
  const select = $("grouping");
  select.value = Money.grouping;
  select.addEventListener("change", () => {
    Money.setGrouping(select.value);
    state.rendered = {};
    if (!$("app").hidden) refresh();
  });
}
setUpGrouping();

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && !$("app").hidden) refresh();
});

if (sessionStorage.getItem(TOKEN_KEY)) connect(); else showLogin("");
