"""The stylesheet and the little script every page loads (served from the app itself: nothing from the internet,
no build step)."""

CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header.top{display:flex;align-items:center;gap:24px;padding:10px 24px;background:#1d2330;color:#fff}
header.top .brand{font-weight:700;font-size:16px;letter-spacing:.3px}
header.top nav a{color:#c9d1e0;text-decoration:none;margin-right:16px;padding:4px 0}
header.top nav a.active{color:#fff;border-bottom:2px solid #6aa3ff}
main{padding:18px 24px;max-width:1400px}
h1{font-size:20px;margin:4px 0 14px}
h2{font-size:16px;margin:18px 0 8px}
form.bar,div.bar{display:flex;flex-wrap:wrap;gap:12px;align-items:end;background:#fff;padding:12px 14px;
 border:1px solid #dde2ea;border-radius:8px;margin-bottom:14px}
label.field{display:flex;flex-direction:column;font-size:12px;color:#5b6475;gap:3px}
input,select,button{font:inherit}
input[type=text],input[type=number],select{padding:5px 7px;border:1px solid #c5ccd8;border-radius:5px;background:#fff}
input[type=number]{width:80px}
button{padding:6px 12px;border:1px solid #2f6fe0;background:#2f6fe0;color:#fff;border-radius:5px;cursor:pointer}
button.secondary{background:#fff;color:#2f6fe0}
button.danger{background:#c0392b;border-color:#c0392b}
button:disabled{opacity:.5;cursor:default}
.drop{flex:1 1 320px;min-height:64px;display:flex;align-items:center;justify-content:center;gap:8px;
 border:2px dashed #9fb3d6;border-radius:8px;color:#5b6475;background:#f9fbff;padding:10px}
.drop.over{border-color:#2f6fe0;background:#eaf1ff}
.drop input[type=file]{max-width:220px}
#status{min-height:20px;margin:6px 0;color:#5b6475}
#status.error,.error{color:#b3261e}
.query{display:flex;gap:14px;align-items:center;background:#fff;border:1px solid #dde2ea;border-radius:8px;
 padding:10px;margin-bottom:12px}
.query img{max-width:140px;max-height:140px;border-radius:4px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:12px}
a.card{display:block;background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:8px;color:inherit;
 text-decoration:none}
a.card:hover{border-color:#2f6fe0;box-shadow:0 1px 6px rgba(47,111,224,.25)}
.thumb{height:150px;display:flex;align-items:center;justify-content:center;background:#eef1f5;border-radius:4px;
 overflow:hidden}
.thumb img{width:100%;height:100%;object-fit:contain}
.meta{display:flex;justify-content:space-between;margin-top:6px;font-variant-numeric:tabular-nums}
.rank{color:#5b6475}.score{font-weight:600}
.path{font-size:12px;color:#5b6475;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;direction:rtl;
 text-align:left}
.label{font-size:12px;color:#1d2330}
.pager{display:flex;gap:12px;align-items:center;margin:10px 0}
.pager a{color:#2f6fe0}
section.group{background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:10px 12px;margin-bottom:12px}
section.group.marked{border-color:#2f6fe0;box-shadow:0 0 0 1px #2f6fe0}
section.group h3{margin:0 0 8px;font-size:14px;display:flex;gap:12px;align-items:center}
.members{display:flex;flex-wrap:wrap;gap:10px}
.bars{display:flex;gap:12px;flex-wrap:wrap}.bars .bar{margin-bottom:12px}.bars .grow{flex:1}
label.member{width:200px;border:1px solid #dde2ea;border-radius:6px;padding:6px;cursor:pointer;display:block}
label.member.keeper{border-color:#1e8e3e;background:#f0faf2}
label.member.gone{opacity:.55}
.member .thumb{height:120px;margin-top:4px}
.size,.tier{font-size:12px;color:#5b6475}
.tag{display:inline-block;font-size:11px;padding:1px 6px;border-radius:9px;background:#e4e8ef;color:#39414f}
.tag.keep{background:#1e8e3e;color:#fff}.tag.gone{background:#b3261e;color:#fff}
table{border-collapse:collapse;background:#fff}
td,th{border:1px solid #dde2ea;padding:5px 8px;text-align:left;font-size:13px;vertical-align:top}
.outcome{background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:10px 12px;margin:10px 0}
.outcome code,.note code{background:#eef1f5;padding:1px 4px;border-radius:3px}
.samples{display:flex;gap:6px;flex-wrap:wrap}
.samples a img{height:64px;border-radius:3px}
.note{color:#5b6475}
iframe.map{width:100%;height:78vh;border:1px solid #dde2ea;border-radius:8px;background:#fff}
"""

JS = r"""
"use strict";
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

async function api(url, options = {}) {
  const response = await fetch(url, {credentials: "same-origin", ...options});
  let body = null;
  try { body = await response.json(); } catch (e) { body = {error: response.statusText}; }
  if (!response.ok) throw new Error(body && body.error ? body.error : `HTTP ${response.status}`);
  return body;
}

function status(text, isError = false) {
  const s = $("#status");
  if (!s) return;
  s.textContent = text;
  s.className = isError ? "error" : "";
}

function baseName(path) { return (path || "").split("/").pop(); }

function hitCard(hit, params) {
  const q = new URLSearchParams(params);
  q.set("id", hit.point_id);
  const img = el("img", {src: hit.thumb, alt: baseName(hit.path), loading: "lazy"});
  return el("a", {class: "card", href: "/?" + q.toString(), "data-point": hit.point_id, title: hit.path || ""},
    el("div", {class: "thumb"}, img),
    el("div", {class: "meta"}, el("span", {class: "rank"}, "#" + hit.rank),
       el("span", {class: "score"}, hit.score.toFixed(4))),
    el("div", {class: "path"}, "\u200e" + (hit.path || "")),
    el("div", {class: "label"}, hit.label || ""));
}

function searchParams(form) {
  const params = {};
  for (const name of ["collection", "k", "label", "group", "encoder"]) {
    const field = form.elements[name];
    if (field && field.value) params[name] = field.value;
  }
  return params;
}

async function upload(form, file) {
  const params = searchParams(form);
  const data = new FormData();
  for (const [k, v] of Object.entries(params)) data.append(k, v);
  data.append("image", file, file.name);
  const preview = $("#query");
  preview.replaceChildren(el("img", {src: URL.createObjectURL(file), alt: file.name}),
    el("div", {}, el("strong", {}, "Query: "), file.name));
  preview.hidden = false;
  status("searching…");
  try {
    const result = await api("/api/search", {method: "POST", body: data});
    const grid = $("#results");
    grid.replaceChildren(...result.hits.map(h => hitCard(h, params)));
    const note = result.query.indexed ? " (this image is indexed: its stored vector was used)" : "";
    status(`${result.hits.length} results in ${result.ms} ms · ${result.encoder}${note}`);
  } catch (e) {
    $("#results").replaceChildren();
    status(e.message, true);
  }
}

function setupSearch() {
  const form = $("#search-form");
  if (!form) return;
  const input = $("#file");
  const drop = $("#drop");
  input.addEventListener("change", () => { if (input.files.length) upload(form, input.files[0]); });
  form.addEventListener("submit", ev => {
    if (input.files.length) { ev.preventDefault(); upload(form, input.files[0]); }
  });
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, ev => { ev.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, ev => { ev.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", ev => {
    const files = ev.dataTransfer.files;
    if (files.length) upload(form, files[0]);
  });
}

const JSON_HEADERS = {"Content-Type": "application/json"};
let saving = Promise.resolve();  // review changes are saved in order; plan and apply wait for them

function groupReview(group) {
  const keeper = $("input[type=radio]:checked", group);
  const marked = $(".mark", group).checked;
  return {group_id: Number(group.dataset.group), marked, keeper: keeper ? keeper.value : null};
}

function showMarkedCount(review) {
  const count = $("#marked-count");
  if (count) count.textContent = String(review.marked.length);
}

function saveReview(groups) {
  const body = JSON.stringify({collection: document.body.dataset.collection, groups: groups.map(groupReview)});
  saving = saving.then(() => api("/api/duplicates/review", {method: "PUT", headers: JSON_HEADERS, body}))
    .then(showMarkedCount)
    .catch(e => status(`the marks were not saved: ${e.message}`, true));
  return saving;
}

function showOutcome(result, applied) {
  const box = $("#outcome");
  const counts = Object.entries(result.counts).map(([k, v]) => `${k} ${v}`).join(" · ") || "nothing to move";
  const rows = result.moves.map(m => el("tr", {}, el("td", {}, String(m.group_id)), el("td", {}, m.original),
    el("td", {}, m.moved_to), el("td", {}, m.status), el("td", {}, m.reason || "")));
  const table = el("table", {}, el("tr", {}, ...["group", "file", "to", "status", "reason"].map(h => el("th", {}, h))),
    ...rows);
  const parts = [el("div", {}, el("strong", {}, applied ? "Applied: " : "Plan (nothing moved yet): "), counts)];
  if (result.manifest) {
    parts.push(el("div", {}, "Signed manifest: ", el("code", {id: "manifest"}, result.manifest)));
    parts.push(el("div", {}, "Undo: ", el("code", {id: "undo"}, result.undo)));
  }
  parts.push(table);
  box.replaceChildren(...parts);
  box.hidden = false;
}

function markMoved(done) {
  const moved = new Set(done.filter(m => m.status === "moved").map(m => m.original));
  for (const input of $$("label.member input[type=radio]")) {
    if (!moved.has(input.value)) continue;
    const label = input.closest("label.member");
    label.classList.add("gone");
    if (!$(".tag.gone", label)) $(".role", label).after(" ", el("span", {class: "tag gone"}, "moved"));
  }
}

async function moves(kind) {
  await saving;
  const count = Number($("#marked-count").textContent);
  if (!count) { status("mark at least one group first", true); return; }
  const ask = `Move the non-keepers of ${count} marked group(s), on every page? (undoable, nothing deleted)`;
  if (kind === "apply" && !confirm(ask)) return;
  status(kind === "apply" ? "moving…" : "planning…");
  try {
    const body = JSON.stringify({collection: document.body.dataset.collection, marked: true});
    const result = await api(`/api/duplicates/${kind}`, {method: "POST", headers: JSON_HEADERS, body});
    showOutcome(result, kind === "apply");
    if (kind === "apply") markMoved(result.moves);
    status("");
  } catch (e) { status(e.message, true); }
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

async function followCompute(job) {
  const button = $("#compute");
  if (button) button.disabled = true;
  status(`computing the duplicate groups of ${job.collection} in the background (job ${job.job})…`);
  let now = job;
  while (now.state === "running" && now.job === job.job) {
    await sleep(1000);
    now = await api("/api/duplicates/compute/status");
  }
  if (button) button.disabled = false;
  if (now.state === "failed") { status(`compute failed: ${now.error}`, true); return; }
  status(now.job === job.job ? `${now.groups} groups found; reloading…` : "reloading…");
  location.href = `/duplicates?collection=${encodeURIComponent(job.collection)}`;
}

async function compute(form) {
  try {
    const threshold = Number(form.elements.threshold.value);
    const body = JSON.stringify({collection: document.body.dataset.collection, threshold});
    await followCompute(await api("/api/duplicates/compute", {method: "POST", headers: JSON_HEADERS, body}));
  } catch (e) { status(e.message, true); }
}

async function resumeCompute() {
  try {
    const job = await api("/api/duplicates/compute/status");
    if (job.state === "running" && job.collection === document.body.dataset.collection) await followCompute(job);
  } catch (e) { status(e.message, true); }
}

function setupGroup(group) {
  const mark = $(".mark", group);
  mark.addEventListener("change", () => { group.classList.toggle("marked", mark.checked); saveReview([group]); });
  for (const radio of $$("input[type=radio]", group)) {
    radio.addEventListener("change", () => {
      for (const m of $$("label.member", group)) {
        const keep = $("input", m).checked;
        m.classList.toggle("keeper", keep);
        const role = $(".role", m);
        role.textContent = keep ? "keep" : "move";
        role.classList.toggle("keep", keep);
      }
      mark.checked = true;
      group.classList.add("marked");
      saveReview([group]);
    });
  }
}

function setMarks(on) {
  const groups = $$("section.group");
  for (const group of groups) { $(".mark", group).checked = on; group.classList.toggle("marked", on); }
  return groups;
}

function setupDuplicates() {
  const form = $("#compute-form");
  if (!form) return;
  form.addEventListener("submit", ev => { ev.preventDefault(); compute(form); });
  resumeCompute();
  if (!$("#duplicates")) return;
  for (const group of $$("section.group")) setupGroup(group);
  $("#mark-all")?.addEventListener("click", () => saveReview(setMarks(true)));
  $("#clear-marks")?.addEventListener("click", () => {
    setMarks(false);
    const collection = encodeURIComponent(document.body.dataset.collection);
    saving = saving.then(() => api(`/api/duplicates/review?collection=${collection}`, {method: "DELETE"}))
      .then(showMarkedCount).catch(e => status(e.message, true));
  });
  $("#plan")?.addEventListener("click", () => moves("plan"));
  $("#apply")?.addEventListener("click", () => moves("apply"));
}

function setupPickers() {
  for (const select of $$("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
}

document.addEventListener("DOMContentLoaded", () => { setupPickers(); setupSearch(); setupDuplicates(); });
"""
