"""Node-level resources: /api/node/{uuid}/{note,log,status,commit,branch,newversion,tag}."""

from __future__ import annotations

import falcon

from cas_dvid.api._common import (
    json_object,
    posted_member,
    read_json,
    send_json,
    send_pair,
    string_field,
    string_list,
)
from cas_dvid.api._repos import _Resource


class NodeNote(_Resource):
    """GET/POST a node's note."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, uuid: str) -> None:
        """Return the note."""
        send_json(resp, {"note": self.v.resolve(uuid).node.note})

    def on_post(self, req: falcon.Request, resp: falcon.Response, uuid: str) -> None:
        """Set the note."""
        doc = posted_member(req, self.limit, "note")
        self.v.set_node_note(uuid, string_field(doc, "note"))


class NodeLog(_Resource):
    """GET/POST a node's log."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, uuid: str) -> None:
        """Return the log."""
        send_json(resp, {"log": self.v.resolve(uuid).node.log})

    def on_post(self, req: falcon.Request, resp: falcon.Response, uuid: str) -> None:
        """Append lines."""
        doc = posted_member(req, self.limit, "log")
        self.v.append_node_log(uuid, string_list(doc, "log"))


class NodeStatus(_Resource):
    """GET /api/node/{uuid}/status (and GET .../commit): whether the node is locked."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, uuid: str) -> None:
        """{"Locked": bool}."""
        send_json(resp, {"Locked": self.v.resolve(uuid).node.locked})


class NodeCommit(NodeStatus):
    """POST /api/node/{uuid}/commit locks the node."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, uuid: str) -> None:
        """Commit; answers the UUID (and our commit id, the snapshot id)."""
        doc = json_object(read_json(req, self.limit))
        at = self.v.resolve(uuid)
        cid = self.v.commit(at.uuid, string_field(doc, "note"), string_list(doc, "log"))
        send_pair(resp, "committed", at.uuid, commit_id=cid)


class NodeBranch(_Resource):
    """POST /api/node/{uuid}/branch."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, uuid: str) -> None:
        """Make a child on a new branch."""
        doc = json_object(read_json(req, self.limit))
        child = self.v.new_child(
            uuid,
            branch=string_field(doc, "branch"),
            note=string_field(doc, "note"),
            uuid=string_field(doc, "uuid") or None,
        )
        send_pair(resp, "child", child)


class NodeNewVersion(_Resource):
    """POST /api/node/{uuid}/newversion."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, uuid: str) -> None:
        """Make a child on the parent's branch."""
        doc = json_object(read_json(req, self.limit))
        child = self.v.new_child(
            uuid, note=string_field(doc, "note"), uuid=string_field(doc, "uuid") or None
        )
        send_pair(resp, "child", child)


class NodeTag(_Resource):
    """POST /api/node/{uuid}/tag."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, uuid: str) -> None:
        """Make a committed child named by the tag."""
        doc = json_object(read_json(req, self.limit, required=True))
        child = self.v.tag(uuid, string_field(doc, "tag"), string_field(doc, "note"))
        send_pair(resp, "child", child)
