"""The show network's topics, under the site prefix (``<mqtt.prefix>/site`` unless ``--site`` says otherwise)::

<site>/nodes/<node>/status      online / offline (retained; the Last Will says offline)
<site>/nodes/<node>/info        the node's announcement (retained JSON)
<site>/nodes/<node>/ping|pong   clock offset round trips
<site>/nodes/<node>/fired       when a synced cue started on the node (wall time)
<site>/exhibits/<id>/lease      the claim of the node that drives the exhibit's devices (retained)
<site>/exhibits/<id>/heartbeat  that node's heartbeat, with its claim
<site>/exhibits/<id>/show       its show as a backup follows it (retained)
<site>/exhibits/<id>/request    an e-stop or PANIC pressed on a backup, for the node that drives
<site>/cue                      a synced GO for several nodes, with its start in site time
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SiteTopics:
    prefix: str
    exhibit: str
    node: str

    def node_topic(self, leaf: str, node: str | None = None) -> str:
        return f"{self.prefix}/nodes/{node or self.node}/{leaf}"

    def exhibit_topic(self, leaf: str) -> str:
        return f"{self.prefix}/exhibits/{self.exhibit}/{leaf}"

    @property
    def cue(self) -> str:
        return f"{self.prefix}/cue"

    @property
    def all_info(self) -> str:
        return f"{self.prefix}/nodes/+/info"

    @property
    def all_status(self) -> str:
        return f"{self.prefix}/nodes/+/status"

    def node_of(self, topic: str) -> str:
        """The node a ``<site>/nodes/<node>/...`` topic is about."""
        return topic[len(self.prefix) + len("/nodes/") :].split("/", 1)[0]
