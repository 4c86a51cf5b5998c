"""The text of /api/help: every endpoint this server answers, one line each."""

from __future__ import annotations

import cas_dvid

ENDPOINTS: list[tuple[str, str, str]] = [
    ("GET", "/api/help", "this text"),
    ("GET", "/api/heartbeat", "'OK' when the server is up"),
    ("GET", "/api/server/info", "server facts as a JSON object of strings"),
    ("GET", "/api/server/types", "datatypes this server can create"),
    ("GET", "/api/server/compiled-types", "same as types"),
    ("POST", "/api/repos", "new repo; body {alias, description, root?} -> {root}"),
    ("GET", "/api/repos/info", "every repo by root UUID"),
    ("HEAD", "/api/repo/{uuid}", "200 if the repo exists"),
    ("GET", "/api/repo/{uuid}/info", "repo: DAG, instances, log"),
    ("POST", "/api/repo/{uuid}/info", "set {alias, description}"),
    (
        "POST",
        "/api/repo/{uuid}/instance",
        "new instance {typename, dataname, versioned?, settings as strings}",
    ),
    ("GET", "/api/repo/{uuid}/log", "repo log {log: [...]}; POST appends"),
    ("GET", "/api/repo/{uuid}/branch-versions/{name}", "UUIDs of a branch, leaf to root"),
    (
        "POST",
        "/api/repo/{uuid}/merge",
        "{mergeType: conflict-free, parents: [...], note} -> {child}",
    ),
    ("GET", "/api/node/{uuid}/note", "node note; POST {note} sets it"),
    ("GET", "/api/node/{uuid}/log", "node log; POST {log: [...]} appends"),
    ("GET", "/api/node/{uuid}/status", "{Locked: bool} (also GET .../commit)"),
    ("POST", "/api/node/{uuid}/commit", "lock the node {note, log} -> {committed, commit_id}"),
    ("POST", "/api/node/{uuid}/branch", "{branch, note, uuid?} -> {child} on a new branch"),
    ("POST", "/api/node/{uuid}/newversion", "{note, uuid?} -> {child} on the same branch"),
    ("POST", "/api/node/{uuid}/tag", "{tag, note} -> committed child named by the tag"),
    (
        "GET",
        "/api/node/{uuid}/{data}/info",
        "instance info: Base, Extended, TreeRoot (tree root id here)",
    ),
    (
        "GET",
        "/api/node/{uuid}/{data}/tags",
        "instance tags; POST {k: v} adds (replace=true replaces)",
    ),
    (
        "GET",
        "/api/node/{uuid}/{kv}/key/{key}",
        "value (Range or byte_start/byte_end); HEAD; POST; DELETE",
    ),
    ("GET", "/api/node/{uuid}/{kv}/keys", "every key, sorted JSON list"),
    ("GET", "/api/node/{uuid}/{kv}/keyrange/{k1}/{k2}", "keys in [k1, k2]"),
    (
        "GET",
        "/api/node/{uuid}/{kv}/keyrangevalues/{k1}/{k2}",
        "protobuf KeyValues; json=true; tar=true",
    ),
    (
        "GET",
        "/api/node/{uuid}/{kv}/keyvalues",
        "body: protobuf Keys or JSON list (json=true, tar=true)",
    ),
    ("POST", "/api/node/{uuid}/{kv}/keyvalues", "body: protobuf KeyValues, one batch"),
    (
        "GET",
        "/api/node/{uuid}/{vol}/raw/0_1_2/{x_y_z size}/{x_y_z offset}",
        "voxels, ZYX, x fastest, LE; [/jpg]",
    ),
    (
        "GET",
        "/api/node/{uuid}/{vol}/raw/{xy|xz|yz}/{w_h}/{x_y_z}[/{fmt}]",
        "slice: png (default), jpg[:q], tif, bmp, raw",
    ),
    ("GET", "/api/node/{uuid}/{vol}/isotropic/...", "as raw, Z resampled to the X voxel size"),
    (
        "POST",
        "/api/node/{uuid}/{vol}/raw/0_1_2/{size}/{offset}",
        "block-aligned voxels, exact length",
    ),
    (
        "GET",
        "/api/node/{uuid}/{vol}/blocks/{bx_by_bz}/{spanX}",
        "raw blocks along X (missing = Background); POST",
    ),
    (
        "GET",
        "/api/node/{uuid}/{vol}/subvolblocks/{size}/{offset}",
        "record stream of stored blocks; compression=",
    ),
    (
        "GET",
        "/api/node/{uuid}/{vol}/specificblocks?blocks=x,y,z,...",
        "record stream of the named blocks",
    ),
    ("GET", "/api/node/{uuid}/{vol}/metadata", "nd-data axes and properties"),
    ("POST", "/api/node/{uuid}/{vol}/extents", "{MinPoint, MaxPoint}"),
    ("POST", "/api/node/{uuid}/{vol}/resolution", "[x, y, z] voxel size"),
    (
        "GET",
        "/api/cas/diff/{from}/{to}/{data}",
        "extension: keys added/changed/removed between versions",
    ),
    ("GET", "/", "the web console (repos, version DAG, instances, slices, diffs)"),
    (
        "POST",
        "/api/cas/sync/negotiate",
        "sync: {refs: [names], have: [hex ids]} -> refs and have flags, one trip",
    ),
    (
        "POST",
        "/api/cas/sync/have",
        "sync: body of 32-byte ids -> bitmap, set if stored with its closure",
    ),
    (
        "POST",
        "/api/cas/sync/fetch",
        "sync: body of 32-byte ids -> framed stream (id, u64 length, stored)",
    ),
    (
        "POST",
        "/api/cas/sync/objects",
        "sync: framed stream in; each object re-hashed, 422 names a bad one",
    ),
    (
        "GET",
        "/api/cas/sync/object/{id}",
        "sync: one stored object; ETag = id, immutable Cache-Control",
    ),
    ("GET", "/api/cas/sync/refs?prefix=P", "sync: ref names"),
    (
        "GET",
        "/api/cas/sync/ref/{name}",
        "sync: ref value, token in X-Ref-Token; PUT with If-Match swaps; DELETE",
    ),
    (
        "DELETE",
        "/api/cas/repo/{uuid}",
        "delete a repo (?imsurethiscanbedeleted=true); data stays until gc",
    ),
    (
        "DELETE",
        "/api/cas/repo/{uuid}/{name}",
        "delete a data instance (?imsurethiscanbedeleted=true)",
    ),
]


def help_text() -> str:
    """Render the endpoint table as plain text."""
    width = max(len(p) for _, p, _ in ENDPOINTS)
    lines = [
        f"cas_dvid {cas_dvid.__version__}: a content-addressed, versioned datastore"
        " speaking DVID's API",
        "",
    ]
    lines += [f"{m:<6} {p:<{width}}  {d}" for m, p, d in ENDPOINTS]
    return "\n".join(lines) + "\n"
