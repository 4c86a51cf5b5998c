// The version DAG as an SVG picture: one node per version, oldest on the left, one row
// per branch; filled = locked (committed), hollow = unlocked; tags are diamonds.

const SVG = "http://www.w3.org/2000/svg";
const DX = 120, DY = 72, X0 = 110, Y0 = 30, R = 11;

function el(name, attrs = {}, text = "") {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text) e.textContent = text;
  return e;
}

export const isTag = (n) => n.Branch.startsWith("tag-");

// Depth (longest path from the root) and lane (branch row) of every node.
export function layout(dag) {
  const nodes = Object.values(dag.Nodes).sort((a, b) => a.VersionID - b.VersionID);
  const byId = new Map(nodes.map((n) => [n.VersionID, n]));
  const depth = new Map(), lanes = new Map(), lane = new Map();
  for (const n of nodes) {
    const ds = n.Parents.filter((p) => depth.has(p)).map((p) => depth.get(p));
    depth.set(n.VersionID, ds.length ? Math.max(...ds) + 1 : 0);
    const key = n.Branch || "";
    if (!lanes.has(key)) lanes.set(key, lanes.size);
    lane.set(n.VersionID, lanes.get(key));
  }
  return { nodes, byId, depth, lane, lanes };
}

export function drawDag(container, dag, selected, onSelect) {
  const { nodes, byId, depth, lane, lanes } = layout(dag);
  const maxDepth = Math.max(0, ...depth.values());
  const width = X0 + maxDepth * DX + 80, height = Y0 + lanes.size * DY - 8;
  const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  svg.append(el("title", {}, `version DAG: ${nodes.length} versions`));
  const pos = (n) => [X0 + depth.get(n.VersionID) * DX, Y0 + lane.get(n.VersionID) * DY];
  for (const [name, row] of lanes) {
    const label = name.startsWith("tag-") ? `tag ${name.slice(4)}` : name || "master";
    svg.append(el("text", { x: 4, y: Y0 + row * DY + 4, class: "branch" }, label));
  }
  for (const n of nodes) {
    for (const p of n.Parents) {
      const parent = byId.get(p);
      if (!parent) continue;
      const [x1, y1] = pos(parent), [x2, y2] = pos(n);
      const mx = (x1 + x2) / 2;
      svg.append(el("path", { class: "edge", d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}` }));
    }
  }
  for (const n of nodes) {
    const [x, y] = pos(n);
    const cls = `node ${n.Locked ? "locked" : "unlocked"}${n.UUID === selected ? " selected" : ""}`;
    const g = el("g", { class: cls, "data-uuid": n.UUID, "data-locked": n.Locked, tabindex: 0 });
    const tip = [`version ${n.VersionID}  ${n.UUID}`, n.Locked ? "locked" : "unlocked (writable)"];
    if (n.CommitID) tip.push(`commit ${n.CommitID}`);
    if (n.Note) tip.push(`note: ${n.Note}`);
    tip.push(`created ${n.Created}`);
    g.append(el("title", {}, tip.join("\n")));
    g.append(el("circle", { class: "ring", cx: x, cy: y, r: R + 5 }));
    if (isTag(n)) {
      g.append(el("rect", { class: "shape", x: x - R * 0.8, y: y - R * 0.8, width: R * 1.6, height: R * 1.6,
                            transform: `rotate(45 ${x} ${y})` }));
    } else {
      g.append(el("circle", { class: "shape", cx: x, cy: y, r: R }));
    }
    g.append(el("text", { x, y: y + R + 14, "text-anchor": "middle", class: "id" },
                isTag(n) ? n.UUID : n.UUID.slice(0, 8)));
    if (n.CommitID) {
      g.append(el("text", { x, y: y + R + 26, "text-anchor": "middle", class: "commit" },
                  `#${n.CommitID.slice(0, 10)}`));
    }
    g.addEventListener("click", () => onSelect(n.UUID));
    g.addEventListener("keydown", (e) => { if (e.key === "Enter") onSelect(n.UUID); });
    svg.append(g);
  }
  container.replaceChildren(svg);
}
