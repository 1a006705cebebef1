// The explorer's page: a map of the preset's cities and nodes, live query flows, report
// verification and alarms. Plain JavaScript, no library, nothing fetched from elsewhere.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const W = 1000, PAD = 50;
const MAX_FLOWS = 40, MAX_ROWS = 100;

const I18N = {
  en: {
    title: "YRD credit chain", nav_map: "Map", nav_reports: "Reports", nav_alarms: "Alarms",
    up: "up", down: "down", alarm: "open alarm", answered: "answered", missing: "missing",
    refused: "refused", nodes: "Nodes", node: "node", city: "city", state: "state",
    height: "height", entries: "entries", enterprises: "enterprises", mirrored: "mirrored",
    witnesses: "witnesses", alarms: "alarms", pairs: "Flows between cities", from: "from", to: "to",
    no_flows: "no report yet", recent: "Recent reports", time: "time", institution: "institution",
    enterprise: "enterprise", purpose: "purpose", outcome: "outcome", holders: "holders",
    latency: "latency", no_reports: "waiting for reports (creditchain query …)",
    verify_title: "Verify a report bundle",
    verify_hint: "Every check is computed by the same code as creditchain report verify, against the consortium's manifest.",
    upload: "Upload a bundle", saved: "Saved bundles", bundle: "bundle", saved_at: "saved",
    size: "size", verify: "verify", valid: "Valid: every check passed",
    invalid: "Does not verify: a check failed",
    not_reached: "Verification stops at the first failed check; the checks after it were not run.",
    alarms_title: "Open alarms",
    alarms_hint: "A node raises an alarm when a peer shows two checkpoints that are not consistent; it refuses that peer's data until its operator resolves the alarm.",
    no_alarms: "no open alarm", evidence: "evidence", resolve: "resolve", live: "live",
    offline: "offline", connecting: "connecting", receipts: "receipts seen",
    resolve_confirm: "Resolve the alarms {node} holds against {peer}? {node} will accept {peer}'s data again.",
    at: "at", against: "against", no_evidence: "no evidence stored", feeds: "event feeds",
    conn_title: "live feed from the nodes",
  },
  zh: {
    title: "长三角征信链", nav_map: "地图", nav_reports: "报告", nav_alarms: "告警",
    up: "在线", down: "离线", alarm: "未处理告警", answered: "已应答", missing: "缺失",
    refused: "已拒绝", nodes: "节点", node: "节点", city: "城市", state: "状态",
    height: "区块高度", entries: "条目", enterprises: "企业", mirrored: "已同步对等节点",
    witnesses: "见证", alarms: "告警", pairs: "城市间查询流", from: "发起", to: "应答",
    no_flows: "尚无报告", recent: "最近的报告", time: "时间", institution: "机构",
    enterprise: "企业", purpose: "用途", outcome: "结果", holders: "数据持有方",
    latency: "耗时", no_reports: "等待查询（creditchain query …）",
    verify_title: "验证报告包", verify_hint: "每一项检查都由与 creditchain report verify 相同的代码根据联盟清单计算。",
    upload: "上传报告包", saved: "已保存的报告包", bundle: "报告包", saved_at: "保存时间",
    size: "大小", verify: "验证", valid: "有效：全部检查通过", invalid: "无效：有检查未通过",
    not_reached: "验证在第一项失败的检查处停止，之后的检查未执行。",
    alarms_title: "未处理的告警",
    alarms_hint: "当对等节点出示两个不一致的检查点时，节点会发出告警，并在运营方处理前拒绝该节点的数据。",
    no_alarms: "没有未处理的告警", evidence: "证据", resolve: "处理", live: "实时",
    offline: "离线", connecting: "连接中", receipts: "条回执",
    resolve_confirm: "处理 {node} 对 {peer} 的告警？{node} 将重新接受 {peer} 的数据。",
    at: "于", against: "针对", no_evidence: "未存证据", feeds: "事件流",
    conn_title: "来自节点的实时数据",
  },
};

const S = {
  lang: localStorage.getItem("explorer-lang") || "en",
  network: null, cities: {}, nodes: {}, pos: {}, feeds: {}, pairs: {},
  reports: [], receipts: 0, alarms: [],
};

const $ = (sel, root = document) => root.querySelector(sel);
const t = (key) => (I18N[S.lang] && I18N[S.lang][key]) || I18N.en[key] || key;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const num = (v) => (v === null || v === undefined ? "–" : Number(v).toLocaleString("en"));

function toast(text) {
  const box = $("#toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 5000);
}

// Every answer of the explorer's API that is not 2xx is an RFC 9457 problem: show its detail.
async function api(path, opts = {}) {
  const r = await fetch(path, opts);
  const type = r.headers.get("content-type") || "";
  const body = type.includes("json") ? await r.json() : await r.text();
  if (!r.ok) {
    const detail = body && body.detail ? body.detail : `${r.status} ${r.statusText}`;
    const err = new Error(detail);
    err.problem = body;
    throw err;
  }
  return body;
}

function cityName(code) {
  const c = S.cities[code];
  if (!c) return code;
  return S.lang === "zh" ? c.name_zh : c.name;
}

// --- language -----------------------------------------------------------------------------
function applyLang() {
  document.documentElement.lang = S.lang === "zh" ? "zh-CN" : "en";
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const e of document.querySelectorAll("[data-i18n-title]")) e.title = t(e.dataset.i18nTitle);
  $("#lang").textContent = S.lang === "zh" ? "English" : "中文";
  for (const e of document.querySelectorAll("[data-city-label]")) e.textContent = cityName(e.dataset.cityLabel);
  renderNodes(); renderPairs(); renderRecent(); renderAlarms(); renderConn();
}

$("#lang").addEventListener("click", () => {
  S.lang = S.lang === "zh" ? "en" : "zh";
  localStorage.setItem("explorer-lang", S.lang);
  applyLang();
});

// --- views ---------------------------------------------------------------------------------
function showView() {
  const view = (location.hash || "#map").slice(1);
  const known = ["map", "reports", "alarms"].includes(view) ? view : "map";
  document.body.dataset.view = known;
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== `view-${known}`;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === known);
  if (known === "reports") loadSaved();
}
window.addEventListener("hashchange", showView);

// --- the map --------------------------------------------------------------------------------
// Equirectangular, true at the mid-latitude: the preset's cities fill the width, and the
// map is as tall as their spread needs (within limits, then the height decides the scale).
function projection(cities) {
  const lats = cities.map((c) => c.lat), lons = cities.map((c) => c.lon);
  const lat0 = Math.min(...lats) - 0.35, lat1 = Math.max(...lats) + 0.35;
  const lon0 = Math.min(...lons) - 0.45, lon1 = Math.max(...lons) + 0.6;
  const k = Math.cos(((lat0 + lat1) / 2) * Math.PI / 180);
  let s = (W - 2 * PAD) / ((lon1 - lon0) * k);
  let h = (lat1 - lat0) * s + 2 * PAD;
  if (h < 520) h = 520;
  if (h > 1100) { h = 1100; s = (h - 2 * PAD) / (lat1 - lat0); }
  const ox = (W - (lon1 - lon0) * k * s) / 2, oy = (h - (lat1 - lat0) * s) / 2;
  const f = (lat, lon) => [ox + (lon - lon0) * k * s, oy + (lat1 - lat) * s];
  f.bounds = { lat0, lat1, lon0, lon1 };
  f.height = h;
  return f;
}

function drawMap(net) {
  const proj = projection(net.cities);
  $("#map").setAttribute("viewBox", `0 0 ${W} ${Math.round(proj.height)}`);
  const grid = $("#grid");
  grid.replaceChildren();
  grid.setAttribute("class", "grid");
  const b = proj.bounds;
  for (let lat = Math.ceil(b.lat0); lat <= b.lat1; lat++) {
    const [x0, y] = proj(lat, b.lon0), [x1] = proj(lat, b.lon1);
    grid.append(svg("line", { x1: x0, y1: y, x2: x1, y2: y }), svg("text", { x: x0 + 2, y: y - 3 }, `${lat}°N`));
  }
  for (let lon = Math.ceil(b.lon0); lon <= b.lon1; lon++) {
    const [x, y0] = proj(b.lat1, lon), [, y1] = proj(b.lat0, lon);
    grid.append(svg("line", { x1: x, y1: y0, x2: x, y2: y1 }), svg("text", { x: x + 2, y: y1 - 4 }, `${lon}°E`));
  }
  const layer = $("#cities");
  layer.replaceChildren();
  const small = net.cities.length > 16;
  for (const c of net.cities) {
    const [x, y] = proj(c.lat, c.lon);
    const g = svg("g", { class: "city", "data-city": c.code, transform: `translate(${x.toFixed(1)},${y.toFixed(1)})` });
    const n = c.nodes.length, ring = n > 1 ? (small ? 11 : 15) : 0, r = small ? 5 : 7;
    g.append(svg("circle", { class: "site", r: ring + r + 5 }));
    const label = svg("text", { x: ring + r + 8, y: 5, "data-city-label": c.code }, cityName(c.code));
    if (small) label.setAttribute("style", "font-size:11px");
    g.append(label);
    if (!small) g.append(svg("text", { class: "code", x: ring + r + 8, y: 19 }, `${c.code} · ${c.admin_code}`));
    c.nodes.forEach((id, i) => {
      const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(1, n);
      const nx = ring * Math.cos(a), ny = ring * Math.sin(a);
      S.pos[id] = [x + nx, y + ny];
      const ng = svg("g", { class: "node down", "data-node": id, "data-state": "down", transform: `translate(${nx.toFixed(1)},${ny.toFixed(1)})` });
      ng.append(svg("circle", { r }), svg("title", {}, id));
      ng.addEventListener("click", () => selectNode(id));
      g.append(ng);
    });
    layer.append(g);
  }
}

function nodeState(v) {
  if (!v || !v.up) return "down";
  return v.alarms && v.alarms.length ? "alarm" : "up";
}

function nodeTitle(v) {
  const c = cityName(v.city);
  if (!v.up) return `${v.node_id} (${c}): ${t("down")}`;
  return `${v.node_id} (${c})\n${t("height")} ${num(v.height)} · ${t("entries")} ${num(v.entries)}\n` +
    `${t("enterprises")} ${num(v.enterprises)} · ${t("mirrored")} ${v.peers_mirrored}/${v.peers}\n` +
    `${t("witnesses")} ${num(v.witnesses)} · ${t("alarms")} ${v.alarms.length}`;
}

function renderNodes() {
  const tbody = $("#nodes tbody");
  if (!S.network) return;
  const rows = [];
  for (const n of S.network.nodes) {
    const v = S.nodes[n.node_id] || { node_id: n.node_id, city: n.city, up: false };
    const st = nodeState(v);
    const g = document.querySelector(`.node[data-node="${n.node_id}"]`);
    if (g) {
      g.setAttribute("class", `node ${st}`);
      g.dataset.state = st;
      g.dataset.height = v.height ?? "";
      g.querySelector("title").textContent = nodeTitle(v);
    }
    rows.push(el("tr", { "data-node": n.node_id, "data-state": st, onclick: () => selectNode(n.node_id) },
      el("td", { text: n.node_id }), el("td", { text: cityName(n.city) }),
      el("td", { class: `state-${st}`, text: st === "alarm" ? t("alarm") : t(st) }),
      el("td", { class: "n", text: num(v.height) }), el("td", { class: "n", text: num(v.entries) }),
      el("td", { class: "n", text: num(v.enterprises) }),
      el("td", { class: "n", text: v.up ? `${v.peers_mirrored}/${v.peers}` : "–" }),
      el("td", { class: "n", text: num(v.witnesses) }),
      el("td", { class: "n", text: v.up ? String(v.alarms.length) : "–" })));
  }
  tbody.replaceChildren(...rows);
  if (S.selected) selectNode(S.selected, false);
}

function selectNode(id, scroll = true) {
  S.selected = id;
  for (const tr of document.querySelectorAll("#nodes tbody tr")) tr.classList.toggle("sel", tr.dataset.node === id);
  const row = document.querySelector(`#nodes tbody tr[data-node="${id}"]`);
  if (row && scroll) row.scrollIntoView({ block: "nearest" });
}

function pulse(id) {
  const g = document.querySelector(`.node[data-node="${id}"]`);
  if (!g) return;
  g.classList.remove("pulse");
  void g.getBBox();
  g.classList.add("pulse");
}

// --- flows ----------------------------------------------------------------------------------
function drawFlow(report) {
  const layer = $("#flows");
  const from = S.pos[report.home_node];
  if (!from) return;
  for (const old of layer.querySelectorAll(".fresh")) old.classList.remove("fresh");
  for (const e of report.edges || []) {
    const to = S.pos[e.node_id];
    if (!to || e.node_id === report.home_node) continue;
    const [x1, y1] = from, [x2, y2] = to;
    const mx = (x1 + x2) / 2, my = (y1 + y2) / 2, dx = x2 - x1, dy = y2 - y1;
    const cx = mx - dy * 0.18, cy = my + dx * 0.18;
    const path = svg("path", {
      pathLength: "100", class: `flow ${e.outcome} fresh`, d: `M${x1.toFixed(1)},${y1.toFixed(1)} Q${cx.toFixed(1)},${cy.toFixed(1)} ${x2.toFixed(1)},${y2.toFixed(1)}`,
      "data-query": report.query_id || "", "data-from": report.home_node, "data-to": e.node_id, "data-outcome": e.outcome,
    });
    path.append(svg("title", {}, `${report.home_node} → ${e.node_id}: ${t(e.outcome)}${e.reason ? " — " + e.reason : ""}`));
    layer.append(path);
  }
  while (layer.children.length > MAX_FLOWS) layer.firstChild.remove();
}

function renderPairs() {
  const tbody = $("#pairs tbody");
  const keys = Object.keys(S.pairs).sort((a, b) => total(S.pairs[b]) - total(S.pairs[a]));
  if (!keys.length) {
    tbody.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: "5", text: t("no_flows") })));
    return;
  }
  tbody.replaceChildren(...keys.map((k) => {
    const [a, b] = k.split(">");
    const c = S.pairs[k];
    return el("tr", { "data-pair": k },
      el("td", { text: cityName(a) }), el("td", { text: cityName(b) }),
      el("td", { class: "n edge-answered", text: String(c.answered || 0) }),
      el("td", { class: "n edge-missing", text: String(c.missing || 0) }),
      el("td", { class: "n edge-refused", text: String(c.refused || 0) }));
  }));
}

function total(c) { return (c.answered || 0) + (c.missing || 0) + (c.refused || 0); }

function holderCell(r) {
  const td = el("td");
  if (r.outcome === "denied") { td.textContent = r.reason || ""; td.className = "outcome-denied"; return td; }
  (r.edges || []).forEach((e, i) => {
    if (i) td.append(", ");
    const mark = e.outcome === "answered" ? `✓${e.records ?? ""}` : e.outcome === "refused" ? "⊘" : "✗";
    td.append(el("span", { class: `edge-${e.outcome}`, title: e.reason || t(e.outcome), text: `${e.node_id} ${mark}` }));
  });
  return td;
}

function renderRecent(fresh) {
  const tbody = $("#recent tbody");
  if (!S.reports.length) {
    tbody.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: "7", text: t("no_reports") })));
  } else {
    tbody.replaceChildren(...S.reports.slice(0, MAX_ROWS).map((r) => el("tr",
      { "data-query": r.query_id || "", "data-outcome": r.outcome, class: fresh && r === S.reports[0] ? "new" : "" },
      el("td", { text: r.time ? new Date(r.time * 1000).toLocaleTimeString(S.lang === "zh" ? "zh-CN" : "en-GB") : "" }),
      el("td", { text: `${r.institution_id} @ ${r.home_node}` }),
      el("td", { text: r.uscc || "" }), el("td", { text: r.purpose || "" }),
      el("td", { class: `outcome-${r.outcome}`, text: r.outcome }),
      holderCell(r), el("td", { class: "n", text: r.latency_ms != null ? `${Math.round(r.latency_ms)} ms` : "" }))));
  }
  $("#receipts").textContent = S.receipts ? `· ${S.receipts} ${t("receipts")}` : "";
}

function addReport(report, fresh) {
  S.reports.unshift(report);
  if (S.reports.length > 200) S.reports.pop();
  drawFlow(report);
  if (!fresh) for (const p of document.querySelectorAll("#flows .fresh")) p.classList.remove("fresh");
  if (fresh) pulse(report.home_node);
}

// --- alarms ------------------------------------------------------------------------------
function collectAlarms() {
  const all = [];
  for (const v of Object.values(S.nodes)) for (const a of v.alarms || []) all.push({ at_node: v.node_id, ...a });
  S.alarms = all;
  const badge = $("#alarm-count");
  badge.textContent = String(all.length);
  badge.classList.toggle("hot", all.length > 0);
}

function renderAlarms() {
  const list = $("#alarm-list");
  const keep = new Set(S.alarms.map((a) => `${a.at_node}/${a.id}`));
  for (const li of list.querySelectorAll("li.alarm")) if (!keep.has(li.dataset.key)) li.remove();
  const empty = list.querySelector("li.empty");
  if (!S.alarms.length) {
    if (!empty) list.append(el("li", { class: "empty", "data-i18n": "no_alarms", text: t("no_alarms") }));
    return;
  }
  if (empty) empty.remove();
  for (const a of S.alarms) {
    const key = `${a.at_node}/${a.id}`;
    if (list.querySelector(`li[data-key="${key}"]`)) continue;
    const evidence = el("div", { class: "evidence" });
    const li = el("li", { class: "alarm", "data-key": key, "data-node": a.at_node, "data-peer": a.node_id, "data-fault": a.fault },
      el("strong", { text: `${a.fault}` }), ` — ${t("at")} ${a.at_node} ${t("against")} ${a.node_id}, ${a.raised_at}`,
      el("div", { text: a.detail }),
      el("div", { class: "actions" },
        el("button", { type: "button", class: "evidence-btn", text: t("evidence"), onclick: () => showEvidence(a, evidence) }),
        el("button", { type: "button", class: "danger resolve-btn", text: t("resolve"), onclick: () => resolveAlarm(a) })),
      evidence);
    list.append(li);
  }
}

async function showEvidence(a, box) {
  try {
    const d = await api(`/api/alarms/${encodeURIComponent(a.at_node)}/${a.id}`);
    box.replaceChildren(...(d.evidence.length ? d.evidence.map((x) => el("pre", { text: x })) : [el("p", { class: "hint", text: t("no_evidence") })]));
  } catch (err) { box.replaceChildren(el("div", { class: "error", text: err.message })); }
}

async function resolveAlarm(a) {
  const q = t("resolve_confirm").replaceAll("{node}", a.at_node).replaceAll("{peer}", a.node_id);
  if (!window.confirm(q)) return;
  try {
    const d = await api("/api/alarms/resolve", {
      method: "POST", headers: { "content-type": "application/json", "x-explorer": "1" },
      body: JSON.stringify({ node_id: a.at_node, peer_id: a.node_id }),
    });
    const said = `${a.at_node}: ${d.resolved ?? 0} alarm(s) against ${a.node_id} resolved`;
    document.body.dataset.lastResolve = said;  // kept: a later toast may replace this one
    toast(said);
  } catch (err) {
    document.body.dataset.lastResolve = `error: ${err.message}`;
    showError("#alarms-error", err.message);
  }
}

function showError(sel, text) {
  const box = $(sel);
  box.textContent = text;
  box.hidden = !text;
}

// --- reports --------------------------------------------------------------------------------
async function loadSaved() {
  try {
    const d = await api("/api/reports");
    $("#reports-dir").textContent = d.dir;
    $("#saved tbody").replaceChildren(...d.reports.map((r) => el("tr", { "data-bundle": r.name },
      el("td", { text: r.name }), el("td", { text: new Date(r.modified * 1000).toLocaleString() }),
      el("td", { class: "n", text: num(r.bytes) }),
      el("td", {}, el("button", { type: "button", class: "verify-btn", text: t("verify"), onclick: () => verifySaved(r.name) })))));
  } catch (err) { showError("#reports-error", err.message); }
}

async function verifySaved(name) {
  try { showVerification(await api(`/api/reports/${encodeURIComponent(name)}`)); }
  catch (err) { showError("#reports-error", err.message); $("#verification").hidden = true; }
}

$("#upload").addEventListener("change", async (ev) => {
  const file = ev.target.files[0];
  if (!file) return;
  try {
    const body = await file.text();
    showVerification(await api("/api/verify", {
      method: "POST", headers: { "content-type": "application/json", "x-explorer": "1", "x-bundle-name": file.name.replace(/[^\x20-\x7e]/g, "_") }, body,
    }));
  } catch (err) { showError("#reports-error", err.message); $("#verification").hidden = true; }
  ev.target.value = "";
});

function showVerification(d) {
  showError("#reports-error", "");
  const box = $("#verification");
  box.hidden = false;
  box.dataset.name = d.name;
  box.dataset.valid = String(d.valid);
  const verdict = $("#verdict");
  verdict.className = d.valid ? "valid" : "invalid";
  verdict.textContent = `${d.name}: ${d.valid ? t("valid") : t("invalid")}`;
  const s = d.summary;
  $("#verify-summary").textContent = s
    ? `${s.uscc} · ${s.institution_id} (${s.purpose}) @ ${s.home_node} · ${Object.keys(s.holders).length} ${t("holders")}, ${s.current} current, ${s.superseded} superseded${s.partial ? " · PARTIAL" : ""}`
    : (d.failed ? `✗ ${d.failed}` : "");
  $("#steps").replaceChildren(...d.steps.map((st) => el("li", { class: `step ${st.ok ? "ok" : "fail"}`, "data-step": st.name, "data-ok": String(st.ok) },
    el("span", { class: "mark", text: st.ok ? "✓" : "✗" }), st.name,
    st.detail ? el("span", { class: "detail", text: ` — ${st.detail}${st.reason ? ` (${st.reason})` : ""}` }) : "")));
  $("#not-reached").hidden = d.valid;
}

// --- the live feed -------------------------------------------------------------------------
function renderConn() {
  const on = Object.values(S.feeds).filter((x) => x === "on").length;
  document.body.dataset.feedsOn = String(on);
  const c = $("#conn");
  c.classList.toggle("on", S.live === true);
  $("#conn-text").textContent = S.live ? `${t("live")} · ${t("feeds")} ${on}/${Object.keys(S.feeds).length}` : t(S.live === false ? "offline" : "connecting");
}

function applyNodes(list) {
  for (const v of list) S.nodes[v.node_id] = v;
  collectAlarms();
  renderNodes();
  renderAlarms();
}

function connect() {
  const es = new EventSource("/api/stream");
  es.onopen = () => { S.live = true; renderConn(); };
  es.onerror = () => { S.live = false; renderConn(); };
  es.addEventListener("hello", (e) => {
    const d = JSON.parse(e.data);
    S.feeds = d.feeds; S.pairs = d.pairs; S.receipts = d.receipts;
    S.reports = [];
    $("#flows").replaceChildren();
    for (const r of d.reports.slice().reverse()) addReport(r, false);
    applyNodes(d.nodes); renderPairs(); renderRecent(false); renderConn();
  });
  es.addEventListener("nodes", (e) => applyNodes(JSON.parse(e.data)));
  es.addEventListener("feeds", (e) => { S.feeds = JSON.parse(e.data); renderConn(); });
  es.addEventListener("report", (e) => {
    const d = JSON.parse(e.data);
    S.pairs = d.pairs;
    addReport(d.report, true);
    renderPairs(); renderRecent(true);
  });
  es.addEventListener("receipt", (e) => { const d = JSON.parse(e.data); S.receipts++; pulse(d.node_id); renderRecent(false); });
  es.addEventListener("alarm", (e) => { const d = JSON.parse(e.data); toast(`ALARM ${d.node_id} → ${d.peer}: ${d.fault}`); });
  es.addEventListener("lagged", () => toast("the page fell behind the feed; some updates were skipped"));
  es.addEventListener("dropped", (e) => { const d = JSON.parse(e.data); toast(`${d.node_id} dropped ${d.dropped} events (feed too slow)`); });
}

async function start() {
  showView();
  try {
    const net = await api("/api/network");
    S.network = net;
    for (const c of net.cities) S.cities[c.code] = c;
    for (const n of net.nodes) S.feeds[n.node_id] = "off";
    $("#preset").textContent = `${net.name} · ${net.nodes.length} ${t("nodes").toLowerCase()} · ${net.target}`;
    drawMap(net);
    applyLang();
    connect();
  } catch (err) {
    toast(err.message);
  }
}

start();
