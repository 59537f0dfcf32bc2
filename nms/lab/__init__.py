"""The simulated NTU lab: network namespaces that answer ping and SNMP (LAB.md).

:class:`LabFleet` builds lab hosts (``ntulab<k>``) on this machine and puts them into
faults; tests get fleets from the ``lab_fleet`` fixture in ``tests/lab_fixtures.py``.
Needs root. Only 127.0.0.0/8, 169.254.0.0/16 and fd4e:5455::/32 are ever used.
"""

from nms.lab.fleet import LabFleet
from nms.lab.netns import LabCommandError, LabError
from nms.lab.plan import MAX_HOSTS, MAX_NTUS_PER_HOST, LabHost, plan_host
from nms.lab.registry import cleanup_stale, safety_routes
from nms.lab.snmpd import SnmpdAgent

__all__ = [
    "MAX_HOSTS",
    "MAX_NTUS_PER_HOST",
    "LabCommandError",
    "LabError",
    "LabFleet",
    "LabHost",
    "SnmpdAgent",
    "cleanup_stale",
    "plan_host",
    "safety_routes",
]
