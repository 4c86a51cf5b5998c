// The diff between two versions: /api/cas/diff for every instance of the repo.

import { diff } from "./api.js";

const LIMIT = 1000;
const KINDS = ["added", "changed", "removed"];

function cell(tag, text, cls) {
  const e = document.createElement(tag);
  e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

export async function showDiff(container, repo, from, to) {
  const names = Object.keys(repo.DataInstances).sort();
  container.replaceChildren(cell("p", `comparing ${from.slice(0, 8)} → ${to.slice(0, 8)}…`, "muted"));
  const results = await Promise.all(
    names.map((n) => diff(from, to, n, LIMIT).then((d) => ({ n, d }), (err) => ({ n, err }))));
  const table = document.createElement("table");
  const head = document.createElement("tr");
  for (const h of ["instance", "type", ...KINDS, "entries", "summary"]) head.append(cell("th", h));
  table.append(head);
  for (const { n, d, err } of results) {
    const tr = document.createElement("tr");
    tr.dataset.instance = n;
    tr.append(cell("td", n), cell("td", repo.DataInstances[n].Base.TypeName));
    if (err) {
      const td = cell("td", String(err.message || err), "error");
      td.colSpan = 5;
      tr.append(td);
      table.append(tr);
      continue;
    }
    const total = KINDS.reduce((s, k) => s + d[k].length, 0);
    for (const k of KINDS) {
      const td = cell("td", String(d[k].length), `count ${k}`);
      td.dataset.kind = k;
      tr.append(td);
    }
    const entries = document.createElement("td");
    if (total) {
      const det = document.createElement("details");
      det.append(cell("summary", total >= LIMIT ? `first ${LIMIT}` : `${total} entries`));
      for (const k of KINDS) {
        for (const key of d[k]) det.append(cell("div", `${k === "added" ? "+" : k === "removed" ? "−" : "~"} ${key}`, "mono"));
      }
      entries.append(det);
    } else {
      entries.textContent = "no change";
      entries.className = "muted";
    }
    tr.append(entries);
    const extra = Object.entries(d).filter(([k]) => !["from", "to", "data", ...KINDS].includes(k));
    tr.append(cell("td", extra.map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join("; "), "mono"));
    table.append(tr);
  }
  container.replaceChildren(table);
}
