"""A small Prometheus client: counters, gauges, histograms, process metrics, text format 0.0.4.

Why not prometheus-client: importing it costs a service process ~2 MB RSS (~1 MB in the paper
venue, whose aiohttp loads part of the same stdlib anyway): its exposition module alone pulls
in http.server, wsgiref, urllib.request, gzip, socketserver and the OpenMetrics/ASGI code,
against a 300 MB budget for the whole stack (docs/BENCHMARKS.md, Footprint), and the services
use only this much of it. This module costs ~0.1 MB. The exposed text
is the same as prometheus-client's for the same metrics (tests/test_prom.py checks it with
prometheus-client's own parser), except that there are:

- no `*_created` samples, no `python_gc_*`, `python_info` or platform metrics;
- no multiprocess mode, exemplars, OpenMetrics output, namespaces/units or timer helpers;
- NaN observations counted in the `+Inf` bucket (as the Go client does; prometheus-client
  puts them in no bucket, so its `_count` misses them).

Thread safety: every value has its own lock, so a metric may be updated from any thread (the
services are single-threaded asyncio, but a library callback may not be). A labelled parent
uses a stand-in lock that refuses updates, so `inc()` needs no extra "has labels?" check.
"""

from __future__ import annotations

import math
import os
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from threading import Lock
from typing import Any, ClassVar, NamedTuple, Protocol, Self

CONTENT_TYPE_LATEST = "text/plain; version=0.0.4; charset=utf-8"

INF = math.inf
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, INF,
)  # fmt: skip

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

# (sample name, labels, value)
Sample = tuple[str, dict[str, str], float]


class MetricFamily(NamedTuple):
    """One `# HELP`/`# TYPE` block: the exposed name, its type and its samples."""

    name: str
    type: str
    documentation: str
    samples: list[Sample]


class Collector(Protocol):
    """Anything a Registry can hold: the names it claims, and its families at scrape time."""

    def describe(self) -> tuple[str, ...]: ...

    def collect(self) -> Iterable[MetricFamily]: ...


class Registry:
    """Collectors in registration order; a time series name belongs to one collector only."""

    def __init__(self) -> None:
        self._lock = Lock()
        self._collectors: dict[Collector, tuple[str, ...]] = {}
        self._names: dict[str, Collector] = {}

    def register(self, collector: Collector) -> None:
        names = collector.describe()
        with self._lock:
            clash = sorted(self._names.keys() & set(names))
            if clash:
                raise ValueError(f"Duplicated timeseries in Registry: {clash}")
            self._collectors[collector] = names
            self._names.update(dict.fromkeys(names, collector))

    def unregister(self, collector: Collector) -> None:
        with self._lock:
            for name in self._collectors.pop(collector):
                del self._names[name]

    def collect(self) -> Iterator[MetricFamily]:
        with self._lock:
            collectors = list(self._collectors)
        for collector in collectors:
            yield from collector.collect()

    def get_sample_value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """The value of one sample, or None (for tests and debugging; not fast)."""
        want = labels or {}
        for family in self.collect():
            for sample_name, sample_labels, value in family.samples:
                if sample_name == name and sample_labels == want:
                    return value
        return None


REGISTRY = Registry()


class _LabelsRequired:
    """Stands in for the value lock of a labelled parent: updating it is a mistake."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def acquire(self) -> bool:
        raise ValueError(f"{self._name} has labels: update a child from .labels(...)")

    def release(self) -> None:
        return None

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *_exc: object) -> None:
        return None


# Guards the creation of children (rare); lookups of existing children take no lock.
_CHILDREN_LOCK = Lock()


class _Metric:
    """What Counter, Gauge and Histogram share: name checks, registration, labelled children.

    A child is an instance of the same class with `_labelvalues` set and no registry; an
    unlabelled metric holds its own value."""

    _type: ClassVar[str]
    _suffixes: ClassVar[tuple[str, ...]] = ()  # further names it claims in the registry
    _reserved: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        *,
        registry: Registry | None = REGISTRY,
        _labelvalues: tuple[str, ...] = (),
    ) -> None:
        if not _METRIC_NAME.fullmatch(name):
            raise ValueError(f"Invalid metric name: {name!r}")
        self._given_name = name
        self._name = self._base_name(name)
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        for label in self._labelnames:
            if not _LABEL_NAME.fullmatch(label) or label.startswith("__") or label in self._reserved:
                raise ValueError(f"Invalid label name for {name}: {label!r}")
        self._labelvalues = _labelvalues
        self._children: dict[tuple[str, ...], Self] = {}
        self._lock: Any = _LabelsRequired(name) if self._labelnames and not _labelvalues else Lock()
        self._init_value()
        if registry is not None:
            registry.register(self)

    @staticmethod
    def _base_name(name: str) -> str:
        return name

    def _init_value(self) -> None:
        raise NotImplementedError

    def _child_kwargs(self) -> dict[str, Any]:
        return {}

    def _child_samples(self) -> Iterable[tuple[str, dict[str, str], float]]:
        """(suffix, extra labels, value) of this one child or unlabelled metric."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name!r}, labels={self._labelvalues or self._labelnames})"

    def labels(self, *labelvalues: object, **labelkwargs: object) -> Self:
        """The child for these label values (created once, then cached)."""
        if not self._labelnames:
            raise ValueError(f"No label names were set when constructing {self!r}")
        if self._labelvalues:
            raise ValueError(f"{self!r} already has labels set; can not chain calls to .labels()")
        if labelkwargs:
            if labelvalues or sorted(labelkwargs) != sorted(self._labelnames):
                raise ValueError(f"Incorrect label names for {self!r}")
            key = tuple(str(labelkwargs[name]) for name in self._labelnames)
        else:
            if len(labelvalues) != len(self._labelnames):
                raise ValueError(f"Incorrect label count for {self!r}")
            key = tuple(map(str, labelvalues))
        child = self._children.get(key)
        if child is None:
            with _CHILDREN_LOCK:
                child = self._children.get(key)
                if child is None:
                    child = type(self)(
                        self._given_name,
                        self._documentation,
                        self._labelnames,
                        registry=None,
                        _labelvalues=key,
                        **self._child_kwargs(),
                    )
                    self._children[key] = child
        return child

    def describe(self) -> tuple[str, ...]:
        return (self._name, *(self._name + s for s in self._suffixes))

    def collect(self) -> list[MetricFamily]:
        if self._labelnames:
            with _CHILDREN_LOCK:
                children = list(self._children.items())
        else:
            children = [((), self)]
        samples: list[Sample] = []
        for values, child in children:
            labels = dict(zip(self._labelnames, values, strict=True))
            for suffix, extra, value in child._child_samples():
                samples.append((self._name + suffix, {**labels, **extra} if extra else labels, value))
        return [MetricFamily(self._family_name(), self._type, self._documentation, samples)]

    def _family_name(self) -> str:
        return self._name


class Counter(_Metric):
    """A value that only goes up. A trailing `_total` of the name is implied: `x` and
    `x_total` both expose `x_total` (as prometheus-client does)."""

    _type = "counter"
    _suffixes = ("_total", "_created")

    @staticmethod
    def _base_name(name: str) -> str:
        return name.removesuffix("_total")

    def _init_value(self) -> None:
        self._value = 0.0

    def inc(self, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        lock = self._lock
        lock.acquire()  # not `with`: half the cost on 3.11, and this is a hot path
        try:
            self._value += amount
        finally:
            lock.release()

    def _family_name(self) -> str:
        return self._name + "_total"

    def _child_samples(self) -> Iterable[tuple[str, dict[str, str], float]]:
        with self._lock:
            return (("_total", {}, self._value),)


class Gauge(_Metric):
    """A value that goes up and down, or is read from a function at scrape time."""

    _type = "gauge"

    def _init_value(self) -> None:
        self._value = 0.0
        self._function: Callable[[], float] | None = None

    def inc(self, amount: float = 1) -> None:
        lock = self._lock
        lock.acquire()
        try:
            self._value += amount
        finally:
            lock.release()

    def dec(self, amount: float = 1) -> None:
        lock = self._lock
        lock.acquire()
        try:
            self._value -= amount
        finally:
            lock.release()

    def set(self, value: float) -> None:
        lock = self._lock
        lock.acquire()
        try:
            self._value = float(value)
        finally:
            lock.release()

    def set_function(self, function: Callable[[], float]) -> None:
        """Read the value from `function()` at each scrape instead."""
        with self._lock:
            self._function = function

    def _child_samples(self) -> Iterable[tuple[str, dict[str, str], float]]:
        with self._lock:
            function, value = self._function, self._value
        return (("", {}, float(function()) if function is not None else value),)


class Histogram(_Metric):
    """Observations counted in buckets (`le` upper bounds, cumulative at scrape), with their
    sum and count."""

    _type = "histogram"
    _suffixes = ("_bucket", "_sum", "_count", "_created")
    _reserved = frozenset({"le"})

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        *,
        registry: Registry | None = REGISTRY,
        _labelvalues: tuple[str, ...] = (),
    ) -> None:
        bounds = [float(b) for b in buckets]
        if bounds != sorted(bounds):
            raise ValueError("Buckets not in sorted order")
        if bounds and bounds[-1] != INF:
            bounds.append(INF)
        if len(bounds) < 2:
            raise ValueError("Must have at least two buckets")
        self._upper = tuple(bounds)
        self._last = len(bounds) - 1
        super().__init__(name, documentation, labelnames, registry=registry, _labelvalues=_labelvalues)

    def _init_value(self) -> None:
        self._counts = [0] * len(self._upper)  # per bucket, not cumulative
        self._sum = 0.0

    def _child_kwargs(self) -> dict[str, Any]:
        return {"buckets": self._upper}

    def observe(self, amount: float) -> None:
        # first bound >= amount; NaN compares false with all, so it goes to +Inf
        i = bisect_left(self._upper, amount) if amount == amount else self._last
        lock = self._lock
        lock.acquire()
        try:
            self._counts[i] += 1
            self._sum += amount
        finally:
            lock.release()

    def _child_samples(self) -> Iterable[tuple[str, dict[str, str], float]]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        samples: list[tuple[str, dict[str, str], float]] = []
        acc = 0
        for bound, count in zip(self._upper, counts, strict=True):
            acc += count
            samples.append(("_bucket", {"le": float_to_go_string(bound)}, float(acc)))
        samples.append(("_count", {}, float(acc)))
        samples.append(("_sum", {}, total))
        return samples


class ProcessCollector:
    """The process_* metrics of prometheus-client's default registry, read from /proc/self at
    scrape time (no thread); on a system without /proc it yields nothing."""

    _NAMES = (
        "process_virtual_memory_bytes",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_max_fds",
    )

    def __init__(self, proc: str = "/proc", registry: Registry | None = REGISTRY) -> None:
        self._proc = proc
        self._ticks = _sysconf("SC_CLK_TCK", 100)
        self._pagesize = _sysconf("SC_PAGESIZE", 4096)
        self._btime: float | None = None  # boot time, read at the first scrape
        if registry is not None:
            registry.register(self)

    def describe(self) -> tuple[str, ...]:
        return self._NAMES

    def collect(self) -> list[MetricFamily]:
        if self._btime is None:
            self._btime = _boot_time(self._proc)
        if not self._btime:
            return []
        own = os.path.join(self._proc, "self")
        out: list[MetricFamily] = []

        def gauge(name: str, doc: str, value: float, kind: str = "gauge") -> None:
            out.append(MetricFamily(name, kind, doc, [(name, {}, value)]))

        try:
            with open(os.path.join(own, "stat"), "rb") as f:
                parts = f.read().split(b")")[-1].split()
            gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", float(parts[20]))
            gauge(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                float(parts[21]) * self._pagesize,
            )
            gauge(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                float(parts[19]) / self._ticks + self._btime,
            )
            gauge(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                (float(parts[11]) + float(parts[12])) / self._ticks,
                "counter",
            )
        except (OSError, IndexError, ValueError):
            pass
        try:
            open_fds = len(os.listdir(os.path.join(own, "fd")))
            gauge("process_open_fds", "Number of open file descriptors.", float(open_fds))
            with open(os.path.join(own, "limits"), "rb") as f:
                for line in f:
                    if line.startswith(b"Max open files"):
                        gauge(
                            "process_max_fds",
                            "Maximum number of open file descriptors.",
                            float(line.split()[3]),  # "unlimited" -> ValueError: left out
                        )
                        break
        except (OSError, IndexError, ValueError):
            pass
        return out


def _sysconf(name: str, default: int) -> int:
    try:
        return os.sysconf(name)
    except (ValueError, OSError, AttributeError):
        return default


def _boot_time(proc: str) -> float:
    try:
        with open(os.path.join(proc, "stat"), "rb") as f:
            for line in f:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


PROCESS_COLLECTOR = ProcessCollector()


def float_to_go_string(d: float) -> str:
    """A value as Prometheus (Go) writes it: `+Inf`, `-Inf`, `NaN`, `1.0`, `1.5e+07`
    (prometheus-client's floatToGoString)."""
    d = float(d)
    if d == INF:
        return "+Inf"
    if d == -INF:
        return "-Inf"
    if d != d:
        return "NaN"
    s = repr(d)
    dot = s.find(".")
    # Go switches to exponents sooner than Python; only positive values (le bounds) matter
    if d > 0 and dot > 6:
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s


def _escape_label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def generate_latest(registry: Registry = REGISTRY) -> bytes:
    """The registry in the Prometheus text format 0.0.4 (CONTENT_TYPE_LATEST)."""
    out: list[str] = []
    for family in registry.collect():
        doc = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {family.name} {doc}\n# TYPE {family.name} {family.type}\n")
        for name, labels, value in family.samples:
            if labels:
                pairs = ",".join(f'{k}="{_escape_label_value(v)}"' for k, v in sorted(labels.items()))
                out.append(f"{name}{{{pairs}}} {float_to_go_string(value)}\n")
            else:
                out.append(f"{name} {float_to_go_string(value)}\n")
    return "".join(out).encode()
