// The slice viewer: a grayscale and/or a label layer cut along xy, xz or yz at one
// position of the third axis, fetched from DVID's raw endpoints (a PNG for
// grayscale, little-endian uint64 bytes for labels) and drawn on one canvas.

import { getBlob, getBytes, labelAt } from "./api.js";

const PLANES = { xy: [0, 1, 2], xz: [0, 2, 1], yz: [1, 2, 0] };
const AXES = "xyz";
const MAX_SIDE = 1024;

// A colour for a label id (lo, hi 32-bit halves): a hash, bright enough to see.
export function labelColour(lo, hi) {
  let h = Math.imul(lo ^ Math.imul(hi ^ 0x27d4eb2d, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return [64 + ((h & 255) % 192), 64 + (((h >>> 8) & 255) % 192), 64 + (((h >>> 16) & 255) % 192)];
}

export function colourOf(id) {
  const big = BigInt(id);
  return labelColour(Number(big & 0xffffffffn), Number(big >> 32n));
}

export class SliceViewer {
  constructor(canvas, ui) {
    this.canvas = canvas;
    this.ui = ui; // {slider, axisName, status, pick}
    this.ctx = canvas.getContext("2d");
    this.uuid = null;
    this.grey = null; // instance name or null
    this.labels = null;
    this.plane = "xy";
    this.zoom = 1;
    this.min = [0, 0, 0];
    this.max = [-1, -1, -1];
    this.center = [0, 0, 0];
    this.generation = 0;
    this.renders = 0;
    this.window = null;
    this.bind();
  }

  // Set version, layers and their union of extents (MinPoint/MaxPoint), then draw.
  setSource(uuid, grey, labels, min, max) {
    const changed = !this.window || this.uuid === null || String(min) !== String(this.min) ||
                    String(max) !== String(this.max);
    Object.assign(this, { uuid, grey, labels });
    if (changed) {
      this.min = min;
      this.max = max;
      this.center = min.map((lo, i) => Math.floor((lo + max[i]) / 2));
      this.fitZoom();
    }
    this.updateSlider();
    return this.render();
  }

  setPlane(plane) { this.plane = plane; this.updateSlider(); return this.render(); }

  // The largest zoom of the menu (½× .. 8×) at which the plane's extent fits the canvas.
  fitZoom() {
    const [a, b] = this.axes;
    const span = Math.max(this.max[a] - this.min[a] + 1, this.max[b] - this.min[b] + 1, 1);
    let zoom = 8;
    while (zoom > 0.5 && span * zoom > Math.min(this.canvas.width, this.canvas.height)) zoom /= 2;
    this.zoom = zoom;
    if (this.ui.zoom) this.ui.zoom.value = String(zoom);
  }
  setZoom(zoom) { this.zoom = zoom; return this.render(); }

  get axes() { return PLANES[this.plane]; }

  setDepth(value) {
    const t = this.axes[2];
    const v = Math.max(this.min[t], Math.min(this.max[t], value));
    if (v === this.center[t]) return Promise.resolve();
    this.center[t] = v;
    this.ui.slider.value = String(v);
    return this.render();
  }

  updateSlider() {
    const t = this.axes[2];
    Object.assign(this.ui.slider, { min: this.min[t], max: Math.max(this.min[t], this.max[t]) });
    this.ui.slider.value = String(this.center[t]);
    this.ui.axisName.textContent = AXES[t];
  }

  // The voxel box the canvas shows now: u0/v0 at the canvas's top left.
  viewBox() {
    const [a, b] = this.axes;
    const side = [this.canvas.width / this.zoom, this.canvas.height / this.zoom];
    const u0 = Math.floor(this.center[a] - side[0] / 2), v0 = Math.floor(this.center[b] - side[1] / 2);
    const lo = [Math.max(u0, this.min[a]), Math.max(v0, this.min[b])];
    const hi = [Math.min(u0 + Math.ceil(side[0]) - 1, this.max[a], lo[0] + MAX_SIDE - 1),
                Math.min(v0 + Math.ceil(side[1]) - 1, this.max[b], lo[1] + MAX_SIDE - 1)];
    return { a, b, u0, v0, lo, hi, w: hi[0] - lo[0] + 1, h: hi[1] - lo[1] + 1 };
  }

  offset(u, v) {
    const [a, b] = this.axes;
    const p = this.center.slice();
    p[a] = u;
    p[b] = v;
    return p;
  }

  async render() {
    const gen = ++this.generation;
    const box = this.viewBox();
    this.window = box;
    const t = this.axes[2];
    this.ui.status.textContent =
      `${this.plane} ${AXES[t]}=${this.center[t]} (${this.min[t]}..${this.max[t]}), zoom ${this.zoom}×`;
    const layers = [];
    if (this.uuid && box.w > 0 && box.h > 0 && this.max[t] >= this.min[t]) {
      const size = `${box.w}_${box.h}`, off = this.offset(box.lo[0], box.lo[1]).join("_");
      if (this.grey) {
        const path = `/api/node/${this.uuid}/${this.grey}/raw/${this.plane}/${size}/${off}/png`;
        layers.push(getBlob(path).then((blob) => createImageBitmap(blob)));
      }
      if (this.labels) {
        const path = `/api/node/${this.uuid}/${this.labels}/raw/${this.plane}/${size}/${off}/raw`;
        layers.push(getBytes(path).then((buf) => this.labelImage(buf, box.w, box.h, !!this.grey)));
      }
    }
    let images;
    try {
      images = await Promise.all(layers);
    } catch (err) {
      if (gen === this.generation) this.ui.status.textContent = String(err.message || err);
      throw err;
    }
    if (gen !== this.generation) return;
    const ctx = this.ctx;
    ctx.imageSmoothingEnabled = false;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    const x = (box.lo[0] - box.u0) * this.zoom, y = (box.lo[1] - box.v0) * this.zoom;
    for (const img of images) ctx.drawImage(img, x, y, box.w * this.zoom, box.h * this.zoom);
    this.renders += 1;
    this.canvas.dataset.renders = String(this.renders);
    this.canvas.dataset.position = this.center.join(",");
  }

  // uint64 labels -> an RGBA bitmap coloured by id (0 transparent, see-through over grey).
  labelImage(buf, w, h, overGrey) {
    const words = new Uint32Array(buf);
    const rgba = new Uint8ClampedArray(w * h * 4);
    const alpha = overGrey ? 120 : 255;
    let lastLo = -1, lastHi = -1, c = [0, 0, 0];
    for (let i = 0; i < w * h; i++) {
      const lo = words[2 * i], hi = words[2 * i + 1];
      if (lo === 0 && hi === 0) continue;
      if (lo !== lastLo || hi !== lastHi) { c = labelColour(lo, hi); lastLo = lo; lastHi = hi; }
      rgba.set([c[0], c[1], c[2], alpha], 4 * i);
    }
    return createImageBitmap(new ImageData(rgba, w, h));
  }

  // The voxel under a canvas pixel.
  voxelAt(px, py) {
    const box = this.window;
    if (!box) return null;
    const u = box.u0 + Math.floor(px / this.zoom), v = box.v0 + Math.floor(py / this.zoom);
    const p = this.offset(u, v);
    const inside = p.every((c, i) => c >= this.min[i] && c <= this.max[i]);
    return inside ? p : null;
  }

  async pick(px, py) {
    const p = this.voxelAt(px, py);
    const out = this.ui.pick;
    if (!p) { out.textContent = "outside the volume"; return; }
    const parts = [`voxel (${p.join(", ")})`];
    try {
      if (this.grey) {
        const buf = await getBytes(`/api/node/${this.uuid}/${this.grey}/raw/0_1_2/1_1_1/${p.join("_")}`);
        parts.push(`grey ${new Uint8Array(buf)[0]}`);
      }
      out.replaceChildren(parts.join(": "));
      if (this.labels) {
        const { supervoxel, body } = await labelAt(this.uuid, this.labels, p);
        const sw = document.createElement("span");
        sw.className = "swatch";
        sw.style.background = `rgb(${colourOf(body).join(",")})`;
        const sv = Object.assign(document.createElement("span"), { id: "pick-supervoxel", textContent: String(supervoxel) });
        const bd = Object.assign(document.createElement("span"), { id: "pick-body", textContent: String(body) });
        out.append(" — ", sw, "supervoxel ", sv, ", body ", bd);
      }
      out.dataset.voxel = p.join(",");
    } catch (err) {
      out.textContent = String(err.message || err);
      out.classList.add("error");
    }
  }

  bind() {
    const c = this.canvas;
    let drag = null;
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const step = (e.shiftKey ? 10 : 1) * Math.sign(e.deltaY || e.deltaX);
      this.setDepth(this.center[this.axes[2]] + step);
    }, { passive: false });
    c.addEventListener("pointerdown", (e) => { drag = { x: e.offsetX, y: e.offsetY, moved: false, c: this.center.slice() }; });
    c.addEventListener("pointermove", (e) => {
      if (!drag || !(e.buttons & 1)) return;
      const dx = e.offsetX - drag.x, dy = e.offsetY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) < 4 && !drag.moved) return;
      drag.moved = true;
      const [a, b] = this.axes;
      this.center[a] = Math.round(drag.c[a] - dx / this.zoom);
      this.center[b] = Math.round(drag.c[b] - dy / this.zoom);
      this.render();
    });
    c.addEventListener("pointerup", (e) => {
      if (drag && !drag.moved) this.pick(e.offsetX, e.offsetY);
      drag = null;
    });
    this.ui.slider.addEventListener("input", () => this.setDepth(Number(this.ui.slider.value)));
  }
}
