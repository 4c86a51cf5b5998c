"""What may follow ``/api/node/{uuid}/{data}/{endpoint}``: the one table of path tails.

The instance route takes any tail (``{rest:path}``); this table says how many
segments each endpoint reads, so extra ones (``raw/xy/.../png/extra/junk``) are a 400
rather than ignored, and the OpenAPI document spells each tail out.
"""

from __future__ import annotations

from cas_dvid.errors import InvalidInputError

TAILS: dict[str, tuple[str, ...]] = {
    "raw": ("{dims}/{size}/{offset}", "{dims}/{size}/{offset}/{format}"),
    "isotropic": ("{dims}/{size}/{offset}", "{dims}/{size}/{offset}/{format}"),
    "arb": ("{tl}/{tr}/{bl}/{res}", "{tl}/{tr}/{bl}/{res}/{format}"),
    "blocks": ("", "{first}/{second}"),
    "subvolblocks": ("{size}/{offset}",),
    "mask": ("{dims}/{size}/{offset}",),
    "label": ("{point}",),
    "maxlabel": ("", "{label}"),
    "nextlabel": ("", "{label}"),
    "set-nextlabel": ("{label}",),
    "supervoxels": ("{label}",),
    "size": ("{label}",),
    "supervoxel-sizes": ("{label}",),
    "lastmod": ("{label}",),
    "sparsevol": ("{label}",),
    "sparsevol-size": ("{label}",),
    "sparsevol-coarse": ("{label}",),
    "sparsevols-coarse": ("{label}/{label2}",),
    "sparsevol-by-point": ("{point}",),
    "index": ("{label}",),
    "cleave": ("{label}",),
    "split-supervoxel": ("{label}",),
    "split": ("{label}",),
    "mutations-range": ("{begin}/{end}",),
    "history": ("{label}/{from}/{to}",),
    "key": ("{key}",),
    "keyrange": ("{key}/{key2}",),
    "keyrangevalues": ("{key}/{key2}",),
    "tile": ("{plane}/{scale}/{point}", "{plane}/{scale}/{point}/{format}"),
    "tilekey": ("{plane}/{scale}/{point}",),
    "neighbors": ("{vertex}",),
    "merge": ("", "nohistory"),
    "property": ("{vertex}/{key}", "{vertex}/{vertex2}/{key}"),
}
"""Path tails after ``/api/node/{uuid}/{data}/{endpoint}``; absent means none."""

SELF_CHECKED = frozenset({"key", "propertytransaction"})
"""Endpoints whose handler words its own refusal (``key/a/b``: a key with a slash)."""

_MOST = {ep: max(t.count("/") + 1 if t else 0 for t in tails) for ep, tails in TAILS.items()}


def check_tail(endpoint: str, args: list[str]) -> None:
    """Refuse more path segments after ``endpoint`` than it reads (DVID ignored none)."""
    most = _MOST.get(endpoint, 0)
    if len(args) > most and endpoint not in SELF_CHECKED:
        extra = "/".join(args[most:])
        raise InvalidInputError(
            f"unexpected {extra[:80]!r} after the {endpoint} endpoint's {most} path segment(s)"
        )
