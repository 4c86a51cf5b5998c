"""HTTP for what a label instance's index answers: sizes, sparse volumes, index, mappings."""

from __future__ import annotations

from cas_dvid.api._common import Services
from cas_dvid.api._instances import Endpoint
from cas_dvid.datatypes.labelmap import LabelStore


def body_routes(services: Services, labels: LabelStore) -> dict[str, dict[str, Endpoint]]:
    """Return the routes of the label index endpoints, for LabelHandler."""
    return {}
