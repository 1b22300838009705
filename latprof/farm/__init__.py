"""A device farm on Ray: many phones on many hosts measure in parallel from one command.

The cluster is Ray's (``ray start --head``). :func:`join` attaches a host and
its phones: each phone becomes Ray custom resources on that host's node
(``phone:SERIAL`` and ``device:CONFIG``) and gets one agent, a detached Ray
actor pinned there by that resource, which runs one job at a time on it.
:class:`Farm` is the client: :meth:`Farm.status`, :meth:`Farm.measure` (each
model on a free phone of the asked kind, results as they arrive),
:class:`FarmDevice` (every phone of a kind as one device for
:func:`latprof.lut.build_lut`: entries sharded, resumable) and
:class:`FarmLatency` (a search's candidates measured in parallel) and
:class:`RayTaskPool` (its accuracy estimates as Ray tasks).

Ray is the optional extra ``latprof[farm]``; it is imported when a farm is
used, so nothing else needs it.
"""

from latprof.farm._client import Farm
from latprof.farm._join import Phone, join, node_labels, node_resources, probe_phones, start_agents
from latprof.farm._lut import DEFAULT_TOLERANCE, FarmDevice, FarmRunner
from latprof.farm._ray import NAMESPACE
from latprof.farm._search import FarmLatency
from latprof.farm._tasks import RayTaskPool

__all__ = ["Farm", "FarmDevice", "FarmRunner", "FarmLatency", "RayTaskPool", "Phone", "join", "probe_phones", "node_resources", "node_labels",
           "start_agents", "NAMESPACE", "DEFAULT_TOLERANCE"]
