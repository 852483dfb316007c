// Sellthrough field view: beat compliance, productive calls, unplanned visits, first and last call, time in
// market and attendance per rep, distributor or region (GET /v1/field/performance), drilling to one rep's day
// (GET /v1/field/reps/{rep}/days/{day}): planned outlets in sequence against the visits in check-in order, on a
// map, each visit with its location verdict. Below the table: the geo-verified share per rep, distributor or
// region (GET /v1/field/geo-verification), reps with repeated off-site orders (GET /v1/field/off-site-alerts) and
// sync delays (GET /v1/field/sync-delays), over the captures accepted since the chosen start date.
// Shares the sales dashboard's token (session storage). No dependencies.
"use strict";

const TOKEN_KEY = "sellthrough.token";
const $ = (id) => document.getElementById(id);
const esc = (s) =>
  String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
// Ratios come as decimal strings of four places: as a percentage of two places, exactly.
const pct = (v) => (v === null || v === undefined ? "–" : (Math.round(Number(v) * 10000) / 100).toFixed(2) + "%");
const hours = (minutes) => `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, "0")}m`;
const time = (iso) => (iso ? new Date(iso).toISOString().slice(11, 16) : "–");
const state = { from: "", to: "", group_by: "rep", day: null };

async function api(path, params = {}) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) query.set(k, v);
  const qs = query.toString();
  const response = await fetch(path + (qs ? "?" + qs : ""), {
    headers: { Authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY), Accept: "application/json" },
  });
  if (!response.ok) {
    let detail = "";
    try { detail = (await response.json()).detail || ""; } catch (e) { /* not JSON */ }
    const error = new Error(`${path}: HTTP ${response.status}${detail ? " – " + detail : ""}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

function defaultRange() {
  const to = new Date();
  const from = new Date(to.getTime() - 6 * 86400000);
  return [from.toISOString().slice(0, 10), to.toISOString().slice(0, 10)];
}

const COLUMNS = [
  ["planned_outlets", "Planned", (r) => r.planned_outlets],
  ["planned_visited", "Planned visited", (r) => r.planned_visited],
  ["compliance", "Beat compliance", (r) => pct(r.beat_compliance)],
  ["visits", "Visits", (r) => r.visits],
  ["productive", "Productive calls", (r) => pct(r.productive_share)],
  ["unplanned", "Unplanned", (r) => r.unplanned_visits],
  ["first", "Avg first call", (r) => r.avg_first_call ?? "–"],
  ["last", "Avg last call", (r) => r.avg_last_call ?? "–"],
  ["market", "Time in market", (r) => hours(r.time_in_market_minutes)],
  ["attended", "Days attended", (r) => r.attended_days],
  ["absent", "Absent days", (r) => r.absent_days],
];

async function loadPerformance() {
  const body = await api("/v1/field/performance", { from: state.from, to: state.to, group_by: state.group_by });
  const head = COLUMNS.map(([, label]) => `<th class="num">${esc(label)}</th>`).join("");
  const rows = body.rows.map((r) => {
    const id = r.id ?? "none";
    const name = state.group_by === "rep"
      ? `<button type="button" class="drill" data-testid="drill-${esc(id)}" data-rep="${esc(id)}">${esc(r.name ?? id)}</button>`
      : esc(r.name ?? id);
    const cells = COLUMNS.map(([key, , show]) => `<td class="num" data-testid="${key}-${esc(id)}">${esc(show(r))}</td>`);
    return `<tr data-testid="field-row-${esc(id)}"><td>${name}</td>${cells.join("")}</tr>`;
  });
  $("performance").innerHTML =
    `<table data-testid="field-table" data-group-by="${esc(body.group_by)}"><thead><tr><th>${esc(body.group_by)}</th>${head}</tr></thead>` +
    `<tbody>${rows.join("")}</tbody></table>` +
    (state.group_by === "rep" ? `<p class="note">Day to open: <input type="date" id="day-pick" data-testid="day-pick" value="${esc(state.to)}"></p>` : "");
  for (const button of document.querySelectorAll("button[data-rep]")) {
    button.addEventListener("click", () => openDay(button.dataset.rep, $("day-pick").value || state.to));
  }
  $("status").textContent = `Field figures ${body.date_from} to ${body.date_to}.`;
  await loadGeo();
}

// The geo reads take a window of days up to now (captures by when they were accepted), not a date range.
function windowDays() {
  const days = Math.floor((Date.now() - Date.parse(state.from + "T00:00:00Z")) / 86400000) + 1;
  return Math.min(366, Math.max(1, days));
}

const VERDICTS = ["on_site", "off_site", "low_accuracy", "no_gps", "outlet_not_geotagged", "mock_location"];

function table(testid, head, rows) {
  return `<table data-testid="${testid}"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead>` +
    `<tbody>${rows.join("")}</tbody></table>`;
}

async function loadGeo() {
  const days = String(windowDays());
  $("geo-window").textContent = `Captures accepted in the last ${days} days.`;
  try {
    const shares = await api("/v1/field/geo-verification", { by: state.group_by, days });
    $("geo-shares").innerHTML = shares.rows.length
      ? table("geo-table", [state.group_by, "Captures", "Geo-verified", ...VERDICTS], shares.rows.map((r) => {
          const key = esc(r.key ?? "none");
          const counts = VERDICTS.map((v) => `<td class="num" data-testid="geo-${v}-${key}">${r[v]}</td>`).join("");
          return `<tr data-testid="geo-row-${key}"><td>${key}</td><td class="num" data-testid="geo-captures-${key}">${r.captures}</td>` +
            `<td class="num" data-testid="geo-share-${key}">${pct(r.verified_share)}</td>${counts}</tr>`;
        }))
      : `<p class="note">No orders or visits in the window.</p>`;
  } catch (error) {
    $("geo-shares").innerHTML = `<p class="error">${esc(error.message)}</p>`;
  }
  let alerts, delays;
  try {
    [alerts, delays] = await Promise.all([
      api("/v1/field/off-site-alerts", { days }),
      api("/v1/field/sync-delays", { by: "rep", days }),
    ]);
  } catch (error) {
    $("off-site").innerHTML = `<p class="error">${esc(error.message)}</p>`;
    $("sync-delays").innerHTML = "";
    return;
  }
  $("off-site").innerHTML = alerts.reps.length
    ? table("off-site-table", ["Rep", "Off-site orders", "Orders", "Last off-site"], alerts.reps.map((r) =>
        `<tr data-testid="off-site-${esc(r.rep_id)}"><td>${esc(r.rep_id)}</td><td class="num">${r.off_site_orders}</td>` +
        `<td class="num">${r.orders}</td><td>${esc(r.last_off_site_at)}</td></tr>`))
    : `<p class="note" data-testid="off-site-none">No rep reached ${alerts.threshold} off-site orders in ${alerts.days} days.</p>`;
  $("sync-delays").innerHTML = delays.rows.length
    ? table("sync-table", ["Rep", "Captures", "p50", "p95", "Max"], delays.rows.map((r) =>
        `<tr data-testid="sync-${esc(r.key)}"><td>${esc(r.key)}</td><td class="num">${r.events}</td>` +
        `<td class="num">${seconds(r.p50_s)}</td><td class="num">${seconds(r.p95_s)}</td><td class="num">${seconds(r.max_s)}</td></tr>`))
    : `<p class="note">No captures in the window.</p>`;
}

function seconds(s) {
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function mapOf(day) {
  const points = [
    ...day.planned.filter((p) => p.lat !== null).map((p) => [p.lat, p.lon]),
    ...day.visits.map((v) => (v.lat !== null ? [v.lat, v.lon] : [v.outlet_lat, v.outlet_lon])).filter((p) => p[0] !== null),
  ];
  if (!points.length) return `<p class="note">No coordinates to draw.</p>`;
  const [w, h, pad] = [420, 300, 20];
  const lats = points.map((p) => p[0]), lons = points.map((p) => p[1]);
  const [minLat, maxLat, minLon, maxLon] = [Math.min(...lats), Math.max(...lats), Math.min(...lons), Math.max(...lons)];
  const x = (lon) => pad + ((lon - minLon) / (maxLon - minLon || 1)) * (w - 2 * pad);
  const y = (lat) => h - pad - ((lat - minLat) / (maxLat - minLat || 1)) * (h - 2 * pad);
  const planned = day.planned.filter((p) => p.lat !== null).map((p) =>
    `<circle cx="${x(p.lon)}" cy="${y(p.lat)}" r="8" fill="none" stroke="#1a56db" stroke-width="2" data-testid="map-planned-${esc(p.outlet_id)}"></circle>` +
    `<text x="${x(p.lon) + 10}" y="${y(p.lat) - 8}">${p.sequence}. ${esc(p.outlet_id)}</text>`).join("");
  const route = day.visits
    .map((v) => (v.lat !== null ? [v.lat, v.lon] : [v.outlet_lat, v.outlet_lon]))
    .filter((p) => p[0] !== null)
    .map((p) => `${x(p[1])},${y(p[0])}`).join(" ");
  const visited = day.visits.filter((v) => v.lat !== null).map((v) =>
    `<circle cx="${x(v.lon)}" cy="${y(v.lat)}" r="4" fill="${v.productive ? "#027a48" : "#b42318"}"` +
    `${v.verdict && v.verdict !== "on_site" ? ` stroke="#f79009" stroke-width="3"` : ""}></circle>`).join("");
  return `<svg width="${w}" height="${h}" role="img" aria-label="Planned outlets and the route visited">` +
    `${planned}<polyline points="${route}" fill="none" stroke="#555" stroke-dasharray="4 3" data-testid="map-route"></polyline>${visited}</svg>`;
}

function verdictText(v) {
  if (!v.verdict) return "–";
  return v.distance_m === null ? v.verdict : `${v.verdict} (${Math.round(v.distance_m)} m)`;
}

async function openDay(rep, date) {
  const day = await api(`/v1/field/reps/${encodeURIComponent(rep)}/days/${encodeURIComponent(date)}`);
  state.day = [rep, date];
  $("day").hidden = false;
  $("day-title").textContent = `${day.name} (${day.rep_id}), ${day.day}`;
  $("day-attendance").textContent = `Day started ${time(day.started_at)}, ended ${time(day.ended_at)} (UTC).`;
  $("day-planned").innerHTML = day.planned.length
    ? `<table><thead><tr><th>#</th><th>Outlet</th><th>Visited</th></tr></thead><tbody>` +
      day.planned.map((p) => `<tr data-testid="planned-${p.sequence}"><td>${p.sequence}</td><td>${esc(p.outlet_id)} ${esc(p.name ?? "")}</td>` +
        `<td>${p.visited ? "yes" : "no"}</td></tr>`).join("") + `</tbody></table>`
    : `<p class="note">No plan for this day.</p>`;
  $("day-visits").innerHTML = day.visits.length
    ? `<table><thead><tr><th>#</th><th>Outlet</th><th>In</th><th>Out</th><th class="num">Minutes</th><th>Planned</th><th>Location</th><th>Order</th></tr></thead><tbody>` +
      day.visits.map((v) => `<tr data-testid="visit-${v.sequence}" data-visit="${esc(v.visit_id)}"><td>${v.sequence}</td>` +
        `<td>${esc(v.outlet_id)} ${esc(v.name ?? "")}</td><td>${time(v.checked_in_at)}</td><td>${time(v.checked_out_at)}</td>` +
        `<td class="num">${v.minutes_spent ?? "–"}</td><td>${v.planned ? "yes" : "no"}</td>` +
        `<td data-testid="verdict-${v.sequence}">${esc(verdictText(v))}</td>` +
        `<td>${v.orders.length ? v.orders.map((o) => esc(o.order_id)).join(", ") : esc(v.no_order_reason ?? "no order")}</td></tr>`).join("") +
      `</tbody></table>`
    : `<p class="note">No visits this day.</p>`;
  $("day-map").innerHTML = mapOf(day);
}

async function connect() {
  try {
    await loadPerformance();
    $("login").hidden = true;
    $("app").hidden = false;
    $("auth-error").hidden = true;
  } catch (error) {
    $("login").hidden = false;
    $("app").hidden = true;
    $("auth-error").textContent = error.message;
    $("auth-error").hidden = false;
  }
}

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  connect();
});
$("filters").addEventListener("submit", (e) => {
  e.preventDefault();
  const data = new FormData($("filters"));
  state.from = data.get("from") || state.from;
  state.to = data.get("to") || state.to;
  state.group_by = data.get("group_by");
  loadPerformance().catch((error) => { $("status").textContent = error.message; });
});
[state.from, state.to] = defaultRange();
$("filters").elements.from.value = state.from;
$("filters").elements.to.value = state.to;
if (sessionStorage.getItem(TOKEN_KEY)) connect();
