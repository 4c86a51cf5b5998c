// The DVID HTTP API calls the console makes (same origin as the page).

async function check(resp, path) {
  if (!resp.ok) {
    const text = (await resp.text()).trim();
    throw new Error(`${path}: ${resp.status} ${text.slice(0, 300)}`);
  }
  return resp;
}

export async function getJSON(path) {
  const resp = await check(await fetch(path), path);
  return resp.json();
}

export async function getBytes(path) {
  const resp = await check(await fetch(path), path);
  return resp.arrayBuffer();
}

export async function getBlob(path) {
  const resp = await check(await fetch(path), path);
  return resp.blob();
}

export const repos = () => getJSON("/api/repos/info");
export const repoInfo = (uuid) => getJSON(`/api/repo/${uuid}/info`);
export const instanceInfo = (uuid, name) => getJSON(`/api/node/${uuid}/${name}/info`);
export const serverInfo = () => getJSON("/api/server/info");
export const diff = (from, to, name, limit) =>
  getJSON(`/api/cas/diff/${from}/${to}/${name}?limit=${limit}`);

// Label and body at one voxel of a label volume (DVID's label endpoint).
export async function labelAt(uuid, name, p) {
  const at = `/api/node/${uuid}/${name}/label/${p.join("_")}`;
  const [sv, body] = await Promise.all([getJSON(`${at}?supervoxels=true`), getJSON(at)]);
  return { supervoxel: BigInt(sv.Label), body: BigInt(body.Label) };
}

export const GREY_TYPES = new Set(["uint8blk", "grayscale8", "uint16blk"]);
export const LABEL_TYPES = new Set(["labelmap", "labelarray", "labelblk"]);

export function typeOf(inst) {
  return inst.Base.TypeName;
}
