"""Write a large synthetic inventory, to time ``nms inventory check`` and start-up.

    python bench/inventory_file.py /tmp/inv100k.yaml [--ntus 100000]
    /usr/bin/time -v scripts/nms inventory check /tmp/inv100k.yaml

One customer per 20 NTUs, an aggregation node per 500, every third NTU with SNMP
(sharing one anchored ``snmp`` block, as real files do). Addresses are loopback
(NTUs from 127.1.0.0, nodes from 127.200.0.0): ``inventory check`` contacts none, and even an
``nms run`` on this file would send nothing off the host. Not a test: it writes a file.
"""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path


def write(path: Path, ntus: int) -> None:
    lines = ["customers:"]
    lines += [f"  - {{id: cust{c}, name: Customer {c}}}" for c in range((ntus + 19) // 20)]
    lines.append("nodes:")
    for n in range((ntus + 499) // 500):
        address = ipaddress.ip_address(0x7FC80000 + n)
        lines.append(f'  - {{id: agg-{n}, kind: aggregation, address: "{address}"}}')
    lines.append("ntus:")
    for i in range(ntus):
        address = ipaddress.ip_address(0x7F010000 + i)
        entry = (
            f"  - id: ntu-{i:06d}\n    customer: cust{i // 20}\n    service_id: SVC-{i}\n"
            f'    site: Site {i}\n    address: "{address}"\n    parent: agg-{i // 500}'
        )
        if i % 3 == 0:
            entry += (
                "\n    snmp: &snmp {community: public, wan: {name: wan0}}"
                if i == 0
                else "\n    snmp: *snmp"
            )
        lines.append(entry)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--ntus", type=int, default=100_000)
    args = parser.parse_args()
    write(args.path, args.ntus)
