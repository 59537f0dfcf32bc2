# The nms image: one image for every process of the distributed wiring
# (`nms probe`, `nms detector`, `nms api`; see docker-compose.yml) and for `nms run`.
#
#   docker build -t nms:local .
#   docker run --rm nms:local --help
#
# Only pyproject.toml, README.md and the three packages are in the build context
# (.dockerignore), so the layer is rebuilt only when the code changes.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Every runtime dependency ships a manylinux wheel for 3.11, so no compiler is needed.
# Installed as a regular (non-editable) package without the dev extra, then the
# sources are removed: the image runs what is in site-packages.
COPY pyproject.toml README.md /src/
COPY nms /src/nms
COPY probes /src/probes
COPY caseapi /src/caseapi
RUN pip install /src && rm -rf /src

# ICMP: the sweeper opens a raw socket when it may (root or CAP_NET_RAW) and otherwise
# an unprivileged datagram ICMP socket (allowed by the sysctl net.ipv4.ping_group_range).
# A capability given with `cap_add` reaches only a root process: Docker sets no ambient
# capabilities, so a non-root user would need `setcap cap_net_raw+ep` on python, and a
# binary with file capabilities refuses to start at all where NET_RAW is dropped, which
# would break the detector and the API too. So the image runs as the unprivileged user
# `nms`, and docker-compose.yml runs only the probe shards as root with every
# capability dropped except NET_RAW: raw sockets, which also report ICMP errors
# (unreachable), and nothing else. Without root, a probe can instead run as `nms` with
# sysctls: {net.ipv4.ping_group_range: "0 2147483647"} (datagram ICMP, no capability).
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/nms --create-home nms
USER nms
WORKDIR /var/lib/nms

ENTRYPOINT ["nms"]
CMD ["--help"]
