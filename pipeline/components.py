"""Connected components of an edge list in K tasks with bounded memory: large-star / small-star rounds.

The algorithm BigCode's Spark MinHash and text-dedup use (Kiveris et al., "Connected Components in
MapReduce and Beyond", SoCC 2014), each operation one datatrove stage of K tasks:

    edges ─► large-star 1 ─► small-star 1 ─► large-star 2 ─► ... ─► large-star R
             (every node links its larger neighbours to its smallest)
                           (every node links itself and its smaller neighbours to the smallest of them)

Nodes are uint64 keys; the label of a component is its smallest key. An edge file holds uint64 pairs
(u, v), the record keyed by u. Task p of a stage reads the records keyed by its nodes (`part(u) == p`,
a hash of u), and writes what it emits already keyed and partitioned for the next stage, as
`SSSSS-PPPPP.edges` (source task, destination task), so a stage is map and reduce at once.

Memory per task is bounded by `budget` bytes, whatever the corpus size: a task whose partition is
larger scatters it by a second hash into pieces under `spill/` and reduces one piece at a time (a
node's whole neighbourhood is always in one piece; `RECORD_BYTES` per record held). A piece can only
outgrow the budget through one enormous neighbourhood (a cluster of budget / RECORD_BYTES members):
the task then stops and names `dedup.cluster_memory_gb`.

Each large-star task also counts the nodes of its input that are neither a star's centre (no smaller
neighbour) nor a leaf (exactly one neighbour, smaller). When a large-star stage counts none, its input
is a set of disjoint stars, each centred on its component's smallest key: converged. The stages after
it do nothing, and the cluster step reads that input, where each centre's group is a whole component.
The number of rounds is data dependent (O(log^2 n) in theory, a few in practice), and datatrove plans
its stages before running them, so a build plans `dedup.cc_rounds` rounds; if they do not converge,
the cluster step says so and names the key.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.io import DataFolderLike, get_datafolder
from datatrove.pipeline.base import PipelineStep

# Bytes a task holds per edge record at its peak: the record, its sorted copy, the sort order, the
# group arrays, the output and its partitioning. Measured (benchmarks/bench_scale.py dedup, 229k
# records a task at 10M documents): ~105 in the star stages, ~153 in dedup_clusters.
RECORD_BYTES = 160
_C1, _C2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_SALT = np.uint64(0x9E3779B97F4A7C15)  # the spill pieces use a hash independent of the task's


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a well-spread hash of uint64 keys (document keys are task << 32 | index)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _C1
        x = (x ^ (x >> np.uint64(27))) * _C2
    return x ^ (x >> np.uint64(31))


def part(keys: np.ndarray, parts: int) -> np.ndarray:
    """The task (0..parts-1) that owns each key."""
    return (_mix(keys) % np.uint64(parts)).astype(np.int64)


class EdgeWriter(dict):
    """A task's output edge files, `RANK-PPPPP.edges`, one per destination task `part(u)` of the
    record (u, v); each opened on its first record, all closed together."""

    def __init__(self, folder, rank: int, parts: int):
        super().__init__()
        self.folder, self.rank, self.parts = folder, rank, parts

    def __missing__(self, p: int):
        f = self[p] = self.folder.open(f"{self.rank:05d}-{p:05d}.edges", "wb")
        return f

    def write(self, u: np.ndarray, v: np.ndarray) -> None:
        if not len(u):
            return
        dest = part(u, self.parts)
        order = np.argsort(dest, kind="stable")
        dest, rec = dest[order], np.stack([u[order], v[order]], 1).astype("<u8")
        bounds = np.flatnonzero(np.diff(dest)) + 1
        for chunk, p in zip(np.split(rec, bounds), dest[np.append(0, bounds)].tolist()):
            self[p].write(chunk.tobytes())

    def close(self) -> None:
        for p in range(self.parts):
            self[p]  # every destination's file, empty or not: a rerun overwrites all a killed run left
        for f in self.values():
            f.close()


def grouped(folder, rank: int, budget: int, spill: Path):
    """Task `rank`'s records of an edge folder as sorted, duplicate-free (u, v) arrays, in pieces that
    each hold whole neighbourhoods (every record of a given u) and fit `budget` bytes."""
    from twbert.errors import UsageError

    names = folder.list_files(glob_pattern=f"*-{rank:05d}.edges")
    total = sum(folder.size(n) for n in names) // 16
    pieces = max(1, -(-total * RECORD_BYTES // budget))
    if pieces == 1:
        rec = np.empty((total, 2), np.uint64)
        at = 0
        for n in names:
            with folder.open(n, "rb") as f:
                chunk = np.frombuffer(f.read(), dtype="<u8").reshape(-1, 2)
            rec[at : at + len(chunk)] = chunk
            at += len(chunk)
        yield from _sorted(rec[:at])
        return
    spill.mkdir(parents=True, exist_ok=True)
    outs = [open(spill / f"{i:05d}.edges", "wb") for i in range(pieces)]
    step = max(1, budget // RECORD_BYTES)
    try:
        for n in names:
            with folder.open(n, "rb") as f:
                while True:
                    rec = np.frombuffer(f.read(step * 16), dtype="<u8").reshape(-1, 2)
                    if not len(rec):
                        break
                    # a second hash of u: every record of u lands in the same piece
                    sub = (_mix(rec[:, 0] ^ _SALT) % np.uint64(pieces)).astype(np.int64)
                    order = np.argsort(sub, kind="stable")
                    sub, rec = sub[order], rec[order]
                    bounds = np.flatnonzero(np.diff(sub)) + 1
                    for chunk, i in zip(np.split(rec, bounds), sub[np.append(0, bounds)].tolist()):
                        outs[i].write(chunk.tobytes())
        for o in outs:
            o.close()
        for i in range(pieces):
            rec = np.fromfile(spill / f"{i:05d}.edges", dtype="<u8").reshape(-1, 2)
            if len(rec) * RECORD_BYTES > 2 * budget:  # only skew gets here: one huge neighbourhood
                largest = int(np.unique(rec[:, 0], return_counts=True)[1].max())
                raise UsageError(
                    f"dedup: task {rank} must hold {len(rec):,} edges at once, over its memory budget "
                    f"dedup.cluster_memory_gb = {budget / 2**30:g}: one document has {largest:,} near-duplicate "
                    "links (a very large cluster). Raise dedup.cluster_memory_gb, or raise dedup.threshold")
            yield from _sorted(rec)
    finally:
        for o in outs:
            o.close()
        shutil.rmtree(spill, ignore_errors=True)


def _sorted(rec: np.ndarray):
    rec = rec[rec[:, 0] != rec[:, 1]]  # self-loops carry nothing
    if len(rec):
        rec = rec[np.lexsort((rec[:, 1], rec[:, 0]))]  # by u, then v; a third of np.unique(axis=0)'s memory
        new = np.empty(len(rec), bool)
        new[0] = True
        np.any(rec[1:] != rec[:-1], axis=1, out=new[1:])
        yield rec[new]


def groups(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of each record's group, start of each group) of records sorted by u."""
    head = np.empty(len(u), bool)
    head[:1] = True
    np.not_equal(u[1:], u[:-1], out=head[1:])
    return np.cumsum(head) - 1, np.flatnonzero(head)


def large_star(rec: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Edges (v, m(u)) for every neighbour v > u of every u, m(u) the smallest of u and its
    neighbours; and how many nodes are neither a star centre nor a leaf (0 when converged)."""
    u, v = rec[:, 0], rec[:, 1]
    g, starts = groups(u)
    m = np.minimum(u[starts], v[starts])[g]  # v is sorted within a group: its first is the smallest
    smaller = np.bincount(g, weights=v < u, minlength=len(starts))
    larger = np.bincount(g, weights=v > u, minlength=len(starts))
    unsettled = int(((smaller > 1) | ((smaller == 1) & (larger > 0))).sum())
    out = v > u
    return v[out], m[out], unsettled


def small_star(rec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges (x, m(u)) for u and each of its smaller neighbours x, m(u) the smallest of them (every
    record here has v < u: the large-star before keyed its edges by the larger end)."""
    u, v = rec[:, 0], rec[:, 1]
    g, starts = groups(u)
    m = v[starts]
    x = np.concatenate([u[starts], v])
    mm = np.concatenate([m, m[g]])
    keep = x != mm
    return x[keep], mm[keep]


def converged(large_star_folders: list) -> int | None:
    """Index of the first large-star stage (folders in order) that found its input settled, if any."""
    for i, folder in enumerate(large_star_folders):
        names = folder.list_files(glob_pattern="*.count") if folder.isdir("") else []
        counts = []
        for n in names:
            with folder.open(n, "rb") as f:
                counts.append(np.frombuffer(f.read(), dtype="<u8"))
        if not counts:
            return None  # not run (yet), or skipped: nothing later can have converged either
        if sum(int(c[1]) for c in counts) == 0:
            return i
    return None


class StarStage(PipelineStep):
    """One large-star or small-star operation as a stage of `parts` tasks (see the module doc).

    Reads `input_folder`'s `*-RANK.edges`; writes `output_folder/RANK-PPPPP.edges` and `RANK.count`
    (uint64: records read, unsettled nodes). Does nothing once an earlier large-star stage (`before`)
    converged."""

    type = "🫂 - DEDUP"

    def __init__(self, kind: str, input_folder: DataFolderLike, output_folder: DataFolderLike, parts: int,
                 before: list[DataFolderLike], budget_gb: float):
        assert kind in ("large", "small")
        self.kind = kind
        self.name = f"⭐ {kind}-star"  # before PipelineStep names its stats after it
        super().__init__()
        self.input_folder = get_datafolder(input_folder)
        self.output_folder = get_datafolder(output_folder)
        self.parts = int(parts)
        self.before = [get_datafolder(f) for f in before]
        self.budget = int(budget_gb * 2**30)

    def needed(self) -> bool:
        """False once an earlier large-star converged: then every task would do nothing."""
        return converged(self.before) is None

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1):
        assert world_size == self.parts, f"a star stage runs as {self.parts} tasks, not {world_size}"
        if not self.needed():
            self.stat_update("skipped_converged")
            return
        read = unsettled = 0
        spill = Path(self.output_folder.path) / f"spill_{rank:05d}"
        out = EdgeWriter(self.output_folder, rank, self.parts)
        with self.track_time():
            try:
                for rec in grouped(self.input_folder, rank, self.budget, spill):
                    read += len(rec)
                    if self.kind == "large":
                        v, m, n = large_star(rec)
                        unsettled += n
                        out.write(v, m)  # keyed by the larger end, for the small-star
                    else:
                        x, m = small_star(rec)
                        out.write(np.concatenate([x, m]), np.concatenate([m, x]))  # both ends
            finally:
                out.close()
        with self.output_folder.open(f"{rank:05d}.count", "wb") as f:
            f.write(np.array([read, unsettled], dtype="<u8").tobytes())
        self.stat_update("edge_records", value=read)
        if self.kind == "large":
            self.stat_update("unsettled_nodes", value=unsettled)
