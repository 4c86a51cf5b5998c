// The console: repos, the version DAG, instances, slice viewer, diff, neuroglancer link.

import * as api from "./api.js";
import { drawDag, layout } from "./dag.js";
import { showDiff } from "./diff.js";
import { SliceViewer } from "./slice.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
// Where "copy neuroglancer link" points (?neuroglancer=URL to use a locally served client).
const NEUROGLANCER = params.get("neuroglancer") || "https://neuroglancer-demo.appspot.com/";

const state = { repos: {}, repo: null, version: null, infos: {} };
let viewer;

function option(value, text, selected = false) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = text;
  o.selected = selected;
  return o;
}

function showError(where, err) {
  const p = document.createElement("p");
  p.className = "error";
  p.textContent = String(err.message || err);
  where.replaceChildren(p);
}

async function loadRepos() {
  state.repos = await api.repos();
  const list = $("repo-list");
  list.replaceChildren();
  const roots = Object.keys(state.repos).sort((a, b) =>
    (state.repos[a].Alias || a).localeCompare(state.repos[b].Alias || b));
  if (!roots.length) list.append(Object.assign(document.createElement("li"), { className: "muted", textContent: "no repos yet" }));
  for (const root of roots) {
    const r = state.repos[root];
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.uuid = root;
    b.append(r.Alias || "(no alias)", Object.assign(document.createElement("small"), { textContent: root }));
    b.addEventListener("click", () => selectRepo(root));
    const li = document.createElement("li");
    li.append(b);
    list.append(li);
  }
  const wanted = params.get("repo");
  const pick = roots.find((r) => wanted && r.startsWith(wanted)) ?? (roots.length === 1 ? roots[0] : null);
  if (pick) await selectRepo(pick, params.get("version"));
}

function leafOf(dag) {
  const { nodes } = layout(dag);
  const leaves = nodes.filter((n) => !n.Children.length);
  return (leaves.length ? leaves : nodes).at(-1).UUID;
}

async function selectRepo(root, version = null) {
  for (const b of $("repo-list").querySelectorAll("button")) b.classList.toggle("selected", b.dataset.uuid === root);
  const repo = await api.repoInfo(root);
  state.repo = repo;
  $("no-repo").hidden = true;
  $("repo").hidden = false;
  $("repo-title").textContent = repo.Alias || repo.Root;
  $("repo-desc").textContent = `${repo.Description || "no description"} · root ${repo.Root} · created ${repo.Created}`;
  $("repo-log").textContent = (repo.Log || []).join("\n") || "(empty)";
  const nodes = layout(repo.DAG).nodes;
  for (const id of ["diff-from", "diff-to"]) $(id).replaceChildren(...nodes.map((n) =>
    option(n.UUID, `${n.VersionID}: ${n.UUID.slice(0, 8)}${n.Branch ? " (" + n.Branch + ")" : ""}${n.Locked ? " locked" : ""}`)));
  const match = version && nodes.find((n) => n.UUID.startsWith(version));
  await selectVersion(match ? match.UUID : leafOf(repo.DAG));
}

function versionNode(uuid) {
  return state.repo.DAG.Nodes[uuid];
}

async function selectVersion(uuid) {
  state.version = uuid;
  const repo = state.repo;
  drawDag($("dag"), repo.DAG, uuid, selectVersion);
  const n = versionNode(uuid);
  const dl = document.createElement("dl");
  const rows = [["version", `${n.VersionID}  ${n.UUID}`], ["branch", n.Branch || "master"],
    ["state", n.Locked ? "locked (committed)" : "unlocked (writable)"], ["commit id", n.CommitID || "—"],
    ["note", n.Note || "—"], ["created", n.Created], ["log", (n.Log || []).join(" | ") || "—"]];
  for (const [k, v] of rows) dl.append(Object.assign(document.createElement("dt"), { textContent: k }),
                                      Object.assign(document.createElement("dd"), { textContent: v }));
  $("version-info").replaceChildren(dl);
  // diff defaults: the first parent -> this version
  const parent = Object.values(repo.DAG.Nodes).find((p) => p.VersionID === n.Parents[0]);
  $("diff-from").value = parent ? parent.UUID : uuid;
  $("diff-to").value = uuid;
  $("ng-link").value = neuroglancerLink(uuid);
  $("ng-status").textContent = "";
  await loadInstances(uuid);
}

export function neuroglancerLink(uuid) {
  const layers = [];
  for (const [name, inst] of Object.entries(state.repo.DataInstances).sort()) {
    const t = api.typeOf(inst);
    const type = api.GREY_TYPES.has(t) ? "image" : api.LABEL_TYPES.has(t) ? "segmentation" : null;
    if (type && !/_\d+$/.test(name)) layers.push({ type, name, source: `dvid://${location.origin}/${uuid}/${name}` });
  }
  return `${NEUROGLANCER}#!${encodeURIComponent(JSON.stringify({ layers, layout: "4panel" }))}`;
}

function fmt(v) {
  if (v === null || v === undefined) return "—";
  return Array.isArray(v) ? v.join(", ") : typeof v === "object" ? JSON.stringify(v) : String(v);
}

async function loadInstances(uuid) {
  const table = $("instances");
  $("instances-at").textContent = `at ${uuid.slice(0, 8)}`;
  const names = Object.keys(state.repo.DataInstances).sort();
  const infos = await Promise.all(names.map((n) => api.instanceInfo(uuid, n).catch((err) => ({ err }))));
  state.infos = Object.fromEntries(names.map((n, i) => [n, infos[i]]));
  const head = document.createElement("tr");
  for (const h of ["name", "type", "extents (min – max)", "block size", "voxel size", "settings"]) {
    head.append(Object.assign(document.createElement("th"), { textContent: h }));
  }
  table.replaceChildren(head);
  for (const n of names) {
    const info = state.infos[n];
    const tr = document.createElement("tr");
    tr.dataset.instance = n;
    const td = (t, cls = "") => tr.append(Object.assign(document.createElement("td"), { textContent: t, className: cls }));
    td(n);
    td(api.typeOf(state.repo.DataInstances[n]));
    if (info.err) { td(String(info.err.message), "error"); table.append(tr); continue; }
    const ext = info.Extended || {};
    td(ext.MinPoint ? `${fmt(ext.MinPoint)} – ${fmt(ext.MaxPoint)}` : "—", "mono");
    td(fmt(ext.BlockSize), "mono");
    const units = Array.isArray(ext.VoxelUnits) && new Set(ext.VoxelUnits).size === 1 ? ext.VoxelUnits[0] : fmt(ext.VoxelUnits);
    td(ext.VoxelSize ? `${fmt(ext.VoxelSize)} ${units}` : "—", "mono");
    const skip = new Set(["MinPoint", "MaxPoint", "BlockSize", "VoxelSize", "VoxelUnits", "Values", "MinIndex", "MaxIndex"]);
    const settings = Object.entries(ext).filter(([k]) => !skip.has(k)).map(([k, v]) => `${k}=${fmt(v)}`);
    settings.push(`Compression=${info.Base.Compression}`, `TreeRoot=${(info.TreeRoot || "").slice(0, 16)}`);
    td(settings.join("  "), "mono");
    table.append(tr);
  }
  fillLayers();
}

function fillLayers() {
  const pick = (types, id) => {
    const sel = $(id);
    const before = sel.value;
    const names = Object.keys(state.repo.DataInstances).sort()
      .filter((n) => types.has(api.typeOf(state.repo.DataInstances[n])));
    // keep the user's choice, "(none)" included; the first volume the first time
    const first = sel.options.length === 0;
    sel.replaceChildren(option("", "(none)"), ...names.map((n) => option(n, n)));
    sel.value = names.includes(before) || (before === "" && !first) ? before : names[0] || "";
  };
  pick(api.GREY_TYPES, "grey-layer");
  pick(api.LABEL_TYPES, "label-layer");
  return updateViewer();
}

function updateViewer() {
  const names = [$("grey-layer").value, $("label-layer").value].filter(Boolean);
  let min = null, max = null;
  for (const n of names) {
    const ext = (state.infos[n] || {}).Extended || {};
    if (!ext.MinPoint) continue;
    min = min ? min.map((v, i) => Math.min(v, ext.MinPoint[i])) : ext.MinPoint.slice();
    max = max ? max.map((v, i) => Math.max(v, ext.MaxPoint[i])) : ext.MaxPoint.slice();
  }
  return viewer.setSource(state.version, $("grey-layer").value || null, $("label-layer").value || null,
                          min || [0, 0, 0], max || [-1, -1, -1]).catch(() => {});
}

function copyLink() {
  const link = $("ng-link").value;
  const done = (text) => { $("ng-status").textContent = text; };
  $("ng-link").select();
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(link).then(() => done("copied"), () => done("select and copy the link"));
  } else {
    done(document.execCommand && document.execCommand("copy") ? "copied" : "select and copy the link");
  }
}

async function main() {
  viewer = new SliceViewer($("slice"), {
    slider: $("slice-pos"), axisName: $("axis-name"), status: $("slice-status"), pick: $("pick"), zoom: $("zoom"),
  });
  window.consoleViewer = viewer; // for tests and the devtools
  $("grey-layer").addEventListener("change", updateViewer);
  $("label-layer").addEventListener("change", updateViewer);
  $("plane").addEventListener("change", () => viewer.setPlane($("plane").value).catch(() => {}));
  $("zoom").addEventListener("change", () => viewer.setZoom(Number($("zoom").value)).catch(() => {}));
  $("copy-ng").addEventListener("click", copyLink);
  $("diff-run").addEventListener("click", () =>
    showDiff($("diff"), state.repo, $("diff-from").value, $("diff-to").value).catch((e) => showError($("diff"), e)));
  api.serverInfo().then((s) => { $("server-info").textContent = `cas_dvid ${s["cas_dvid Version"] || ""} · ${s["Storage backend"] || ""}`; }, () => {});
  try {
    await loadRepos();
  } catch (err) {
    showError($("repo-list"), err);
  }
  document.body.dataset.ready = "true";
}

main();
