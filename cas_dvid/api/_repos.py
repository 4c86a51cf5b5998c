"""Repo-level resources: /api/repos, /api/repos/info and /api/repo/{uuid}/..."""

from __future__ import annotations

import falcon

from cas_dvid.api._common import (
    Services,
    config_object,
    json_object,
    posted_member,
    read_json,
    send_json,
    send_pair,
    string_field,
    string_list,
)
from cas_dvid.api._render import fill_extents, repo_json
from cas_dvid.errors import InvalidInputError


class _Resource:
    def __init__(self, services: Services) -> None:
        self.s = services
        self.v = services.versions
        self.limit = services.config.max_json_bytes


class Repos(_Resource):
    """POST /api/repos: a new repo."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Create a repo; body optional: alias, description, root (any case, as DVID)."""
        doc = config_object(read_json(req, self.limit))
        root = string_field(doc, "root") or None
        uuid = self.v.create_repo(
            string_field(doc, "alias"), string_field(doc, "description"), root
        )
        send_pair(resp, "root", uuid)


class ReposInfo(_Resource):
    """GET /api/repos/info: every repo by root UUID."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """All repos."""
        send_json(
            resp,
            {
                root: fill_extents(self.s, r, repo_json(r, self.s.types))
                for root, r in self.v.repos().items()
            },
        )


class RepoInfo(_Resource):
    """GET/POST /api/repo/{uuid}/info and HEAD /api/repo/{uuid}."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, uuid: str) -> None:
        """Return the repo holding ``uuid``."""
        repo = self.v.resolve(uuid).repo
        send_json(resp, fill_extents(self.s, repo, repo_json(repo, self.s.types)))

    def on_post(self, req: falcon.Request, resp: falcon.Response, uuid: str) -> None:
        """Set alias and/or description (keys in any case, as DVID)."""
        doc = config_object(read_json(req, self.limit, required=True))
        alias = string_field(doc, "alias") if "alias" in doc else None
        desc = string_field(doc, "description") if "description" in doc else None
        self.v.set_repo_info(uuid, alias, desc)

    def on_head(self, req: falcon.Request, resp: falcon.Response, uuid: str) -> None:
        """200 if the repo exists."""
        at = self.v.resolve(uuid)
        resp.content_type = "text/plain; charset=utf-8"
        resp.text = f"Repo available with root UUID {at.repo.root}\n"


class RepoInstance(_Resource):
    """POST /api/repo/{uuid}/instance: a new data instance."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, uuid: str) -> None:
        """Add an instance; DVID wants every setting as a string."""
        doc = json_object(read_json(req, self.limit))
        at, inst = self.s.data.create_instance(uuid, doc)
        send_pair(resp, "result", f"Added {inst.name} [{inst.typename}] to node {at.uuid}")


class RepoLog(_Resource):
    """GET/POST /api/repo/{uuid}/log."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, uuid: str) -> None:
        """Return the repo log."""
        send_json(resp, {"log": self.v.resolve(uuid).repo.log})

    def on_post(self, req: falcon.Request, resp: falcon.Response, uuid: str) -> None:
        """Append lines."""
        doc = posted_member(req, self.limit, "log")
        self.v.append_repo_log(uuid, string_list(doc, "log"))


class BranchVersions(_Resource):
    """GET /api/repo/{uuid}/branch-versions/{name}."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, uuid: str, name: str) -> None:
        """UUIDs of a branch, leaf first."""
        send_json(resp, self.v.branch_versions(uuid, name))


class RepoMerge(_Resource):
    """POST /api/repo/{uuid}/merge."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, uuid: str) -> None:
        """Merge two or more locked parents into a new unlocked child."""
        doc = json_object(read_json(req, self.limit, required=True))
        child = self.v.merge(
            uuid,
            string_list(doc, "parents"),
            string_field(doc, "note"),
            string_field(doc, "mergeType", ""),
        )
        send_pair(resp, "child", child)


class DeleteRepo(_Resource):
    """DELETE /api/cas/repo/{uuid}?imsurethiscanbedeleted=true: DVID's `repos delete` over HTTP."""

    def on_delete(self, req: falcon.Request, resp: falcon.Response, uuid: str) -> None:
        """Remove the repo holding ``uuid`` (its objects stay until gc)."""
        _sure(req)
        repo = self.v.delete_repo(uuid)
        send_json(resp, {"deleted": repo.root})


class DeleteInstance(_Resource):
    """DELETE /api/cas/repo/{uuid}/{name}?imsurethiscanbedeleted=true: `repo UUID delete NAME`."""

    def on_delete(self, req: falcon.Request, resp: falcon.Response, uuid: str, name: str) -> None:
        """Remove a data instance from every version of its repo."""
        _sure(req)
        inst = self.v.delete_instance(uuid, name)
        send_json(resp, {"deleted": inst.name, "data_uuid": inst.data_uuid})


def _sure(req: falcon.Request) -> None:
    if not req.get_param_as_bool("imsurethiscanbedeleted"):
        raise InvalidInputError("deletion needs the query string imsurethiscanbedeleted=true")
