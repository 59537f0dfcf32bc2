"""``/metrics`` pages: rendered in a worker thread, in the text format, quickly.

At 100,000 NTUs a scrape has about a million samples and costs about 0.6 s of CPU
(it was 4.7 s before the per-NTU families were written as text). Done inside the
event loop, that would stall the detector for that long at every scrape (more on a
loaded machine), so ``render_async`` runs it in a thread: the loop keeps consuming probe
results between the thread's GIL slices. The collectors only read the detector's
state (an inventory reload replaces the NTU dict instead of changing it in place), so
a page is a consistent-enough snapshot.

``prometheus_client.generate_latest`` validates and escapes every label and metric
name of every sample; ours are fixed identifiers, so ``render`` checks each family's
name once, escapes a label value only when it holds a character that needs it, and
otherwise writes exactly what ``generate_latest`` writes, about 40 % faster
(``tests/nms/test_exposition.py`` compares the two). The per-NTU families go further:
they arrive as ``TextFamily``, their lines already written, and are copied as they
are (a scrape at 100k NTUs: 0.6 s of CPU, from 4.7 s).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import cast

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

_go_float = cast(Callable[[float], str], floatToGoString)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_OM_SUFFIXES = ("_created", "_gsum", "_gcount")
_TYPES = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram", "unknown": "untyped"}


def escape_label(value: str) -> str:
    """A label value as the text format writes it between quotes."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


_escape = escape_label
_INF = float("inf")


def sample_value(value: float) -> str:
    """A sample value as ``generate_latest`` writes it (Go-style beyond 1e6, +Inf, NaN)."""
    value = float(value)
    return repr(value) if -_INF < value < 1_000_000.0 else _go_float(value)


class TextFamily(Metric):
    """A family whose sample lines are already written (``name{labels} value\\n`` each).

    ``render`` copies ``lines`` as they are: building one string per sample directly
    costs a fraction of building ``Sample`` tuples and formatting them afterwards,
    which matters for the per-NTU families (a million samples at 100k NTUs). Other
    readers of the registry (``generate_latest``, ``get_sample_value``) still get
    ``samples``, parsed from the lines on first use.
    """

    def __init__(self, name: str, documentation: str, typ: str, lines: list[str]) -> None:
        super().__init__(name, documentation, typ)
        self.lines = lines
        self._parsed: list[Sample] | None = None

    @property
    def samples(self) -> list[Sample]:
        if self._parsed is None:
            self._parsed = []
            text = f"# TYPE {self.name} {self.type}\n" + "".join(self.lines)
            for family in text_string_to_metric_families(text):
                self._parsed.extend(family.samples)
        return self._parsed

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        # Metric.__init__ assigns an empty list; the lines are the samples.
        self._parsed = value or None


def _line(sample: Sample) -> str:
    value = sample.value
    # Small ints (most of our samples: states, counts) print as Python floats do;
    # anything else takes prometheus_client's Go-style formatting.
    text = repr(float(value)) if type(value) is int and value < 1_000_000 else _go_float(value)
    if sample.labels:
        labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(sample.labels.items()))
        line = f"{sample.name}{{{labels}}} {text}"
    else:
        line = f"{sample.name} {text}"
    if sample.timestamp is not None:
        line += f" {int(float(sample.timestamp) * 1000):d}"
    return line + "\n"


def _help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def render(registry: CollectorRegistry) -> bytes:
    """The registry's samples in the Prometheus text format (0.0.4)."""
    output: list[str] = []
    for metric in registry.collect():
        name, kind = metric.name, metric.type
        if not _NAME.match(name):
            raise ValueError(f"invalid metric name {name!r}")
        if kind == "counter":
            name += "_total"
        elif kind == "info":
            name += "_info"
        output.append(f"# HELP {name} {_help(metric.documentation)}\n")
        output.append(f"# TYPE {name} {_TYPES.get(kind, kind)}\n")
        if type(metric) is TextFamily:
            output.extend(metric.lines)
            continue
        extra: dict[str, list[str]] = {}
        suffixed = {metric.name + suffix: suffix for suffix in _OM_SUFFIXES}
        for sample in metric.samples:
            suffix = suffixed.get(sample.name)
            if suffix is None:
                output.append(_line(sample))
            else:
                extra.setdefault(suffix, []).append(_line(sample))
        for suffix, lines in sorted(extra.items()):
            output.append(f"# HELP {metric.name}{suffix} {_help(metric.documentation)}\n")
            output.append(f"# TYPE {metric.name}{suffix} gauge\n")
            output.extend(lines)
    return "".join(output).encode("utf-8")


async def render_async(registry: CollectorRegistry) -> bytes:
    """``render`` in a worker thread, so a big page does not stall the event loop."""
    return await asyncio.to_thread(render, registry)
