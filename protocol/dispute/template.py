"""Template programs: one committed program per element class, relocated on chain to any element.

The programs of most RepOps ops are the same for every output element but for the input elements
they read and a few immediates (a row number, a column number) — all of them affine in the
element's coordinates. Committing every instruction of every element (what a long row op of a
transformer would need: a softmax over 16 x 2 x 32 x 32 elements of 864 instructions each) costs
far too much to build, so a descriptor of a :data:`TEMPLATE_KINDS` kind commits instead, for each
*class* of elements, the program of the class's first element (its *base*) with, for every operand
of every instruction, how its value moves with the element:

    value(e) = value(base) + sum_k (coord_k(e) - coord_k(base)) * coef_k    (mod 2^32)

over the coordinates of the element in the op's kernel domain (``OpDef.domain``; its row-major
order is the output's). Register operands, opcodes and destinations never move. The class of an
element is a per-kind rule shared with the contract (``programs/TemplateProgram.sol``):

* ``attn_scores``: 0 when the key position is at most the query position (kept by the causal
  mask), else 1 (the mask's SELECT condition is an immediate);
* ``attn_dqkv``: which of q, k, v the element belongs to (domain dim 2; dv has no scale);
* the row ops whose element's place in its row changes the program (its value stays live while
  the row is reduced, which shifts register allocation), :data:`COLUMN_CLASS_KINDS`: the last
  coordinate (the column);
* every other kind: one class.

Programs of a class shorter than the longest are padded at the front with ``OR r0 = r0, #0``
(registers start at zero, so it changes nothing); every class's result is in register 0.

Template leaf ``c * L + m`` (L the padded length) is, packed big-endian: the 21-byte instruction m
of class c, ``uint8 ndim``, the domain shape (ndim x uint32), the class base's coordinates
(ndim x uint32), and the coefficients (3 operands x ndim x int32, operand-major). The descriptor's
``programRoot`` is the RFC 9162 root over those leaves, ``programLength`` = L,
``programRegisters`` the most registers any class uses.

Building a template traces the op's kernel on a few rows (``ops.trace``'s own machinery, with
every lane of the row extracted at once): the base of each class and one step along each
coordinate (for the column classes, class 0's steps, its inputs moving by slot alone, serve every
class), and the last element of the first, a middle and the last class, which must equal its
relocated template (else the op is not affine and cannot be templated: :class:`TemplateError`).
The tests compare relocated templates with the tracer on many more elements of every kind of a real
tiny-gpt step. Built trees are kept on disk (:func:`cache_dir`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import pickle
import struct
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from eth_abi import encode as abi_encode

from protocol.commit.hashing import leaf_hash
from protocol.commit.merkle import inclusion_path_from_levels, tree_levels
from protocol.errors import VerigradError
from protocol.repops.backend import TraceBackend
from protocol.repops.isa import Imm, In, Instr, Opcode, Reg
from protocol.repops.ops import get_op

MASK32 = 0xFFFFFFFF

#: Kinds whose element classes are their columns (the last domain coordinate).
COLUMN_CLASS_KINDS = frozenset({"softmax", "cross_entropy_backward", "layernorm_backward", "layernorm_stats"})

#: Kinds whose descriptors commit template programs (the rest are derived on chain or use a step table).
TEMPLATE_KINDS = frozenset({
    "cross_entropy", "cross_entropy_backward", "exp", "log", "sqrt", "tanh", "erf", "gelu", "gelu_backward",
    "softmax", "softmax_backward", "log_softmax", "log_softmax_backward", "layernorm_stats", "layernorm_apply",
    "layernorm_backward", "layernorm_dgamma", "embedding", "embedding_backward", "attn_scores", "attn_apply",
    "attn_dprobs", "attn_dqkv",
})  # fmt: skip

PAD = Instr(Opcode.OR, 0, (Reg(0), Imm(0)))
"""The no-op a shorter class's program is padded with, at its front."""


class TemplateError(VerigradError):
    """An op whose programs are not one template per class plus affine relocation."""


def class_of(kind: str, coords: Sequence[int], domain: Sequence[int]) -> tuple[int, int]:
    """(class of the element at ``coords``, number of classes) of an op of kind ``kind``."""
    if kind == "attn_scores":
        return (1 if coords[3] > coords[2] else 0), 2
    if kind == "attn_dqkv":
        return coords[2], domain[2]
    if kind in COLUMN_CLASS_KINDS and domain:
        return coords[-1], domain[-1]
    return 0, 1


def _signed(v: int) -> int:
    v &= MASK32
    return v - (1 << 32) if v & 0x80000000 else v


def _value(o: Any) -> int:
    if isinstance(o, In):
        return o.flat
    if isinstance(o, Imm):
        return o.bits
    return o.n


def _shape_sig(p: Sequence[Instr]) -> list[tuple[Any, ...]]:
    """What relocation never changes: opcodes, destinations, operand kinds, slots, registers."""
    return [(ins.op, ins.dst, tuple((type(s).__name__, s.slot if isinstance(s, In) else None,
                                     s.n if isinstance(s, Reg) else None) for s in ins.srcs)) for ins in p]


def relocate(ins: Instr, coef: Sequence[Sequence[int]], delta: Sequence[int]) -> Instr:
    """Instruction ``ins`` of a template moved by coordinate offsets ``delta`` (``coef[i][k]``)."""
    srcs: list[Any] = []
    for i, s in enumerate(ins.srcs):
        shift = sum(c * d for c, d in zip(coef[i], delta, strict=True))
        if isinstance(s, In):
            srcs.append(In(s.slot, (s.flat + shift) & MASK32))
        elif isinstance(s, Imm):
            srcs.append(Imm((s.bits + shift) & MASK32))
        else:
            srcs.append(s)
    return Instr(ins.op, ins.dst, tuple(srcs))


class _RowTrace(TraceBackend):
    """The tracing backend with each node's register operands computed once: the lanes of a row
    share most of their nodes, and every lane's program is extracted from the same trace."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._dep_cache: dict[int, list[int]] = {}

    def _deps(self, n: int) -> list[int]:
        d = self._dep_cache.get(n)
        if d is None:
            d = self._dep_cache[n] = super()._deps(n)
        return d


class _Tracer:
    """Programs of elements of one op: one kernel run per restricted row (``ops.trace``'s own
    machinery), each lane's program extracted when asked for."""

    def __init__(self, kind: str, shapes: Sequence[Sequence[int]], attrs: dict[str, Any]):
        self.op = get_op(kind)
        self.attrs = dict(attrs)
        self.zeros = [torch.zeros(tuple(s), dtype=torch.int64 if i in self.op.int_inputs else torch.float32)
                      for i, s in enumerate(shapes)]
        self.flat_views = self.op.views(
            [np.arange(t.numel(), dtype=np.int64).reshape(tuple(t.shape)) for t in self.zeros], self.attrs)
        self.view_shapes = [tuple(v.shape) for v in self.flat_views]
        self.domain = tuple(int(d) for d in self.op.domain(self.view_shapes, self.attrs))
        self.numel = int(np.prod(self.domain)) if self.domain else 1
        self.rows: dict[tuple[int, ...], tuple[_RowTrace, np.ndarray, tuple[int, ...]]] = {}
        self.cache: dict[tuple[int, ...], tuple[list[Instr], int]] = {}

    def program(self, coords: tuple[int, ...]) -> tuple[list[Instr], int]:
        got = self.cache.get(coords)
        if got is None:
            _, pinned = self.op.restrict(coords, self.view_shapes, self.attrs)
            key = tuple(c if d in pinned else -1 for d, c in enumerate(coords))
            if key not in self.rows:
                self.rows[key] = self._run(coords)
            k, refs, pinned = self.rows[key]
            got = self.cache[coords] = k.program(refs[tuple(0 if d in pinned else c for d, c in enumerate(coords))])
        return got

    def _run(self, pos: tuple[int, ...]) -> tuple[_RowTrace, np.ndarray, tuple[int, ...]]:
        """ops.trace's kernel run for pos's restricted domain (every lane of the row)."""
        op, dom = self.op, self.domain
        idxs, pinned = op.restrict(pos, self.view_shapes, self.attrs)
        coords = []
        for d, s in enumerate(dom):
            shape = [1] * len(dom)
            if d in pinned:
                coords.append(np.array([pos[d]], dtype=np.int64).reshape(shape))
            else:
                shape[d] = s
                coords.append(np.arange(s, dtype=np.int64).reshape(shape))
        k = _RowTrace(self.zeros, coords)
        k.view_shapes = self.view_shapes
        k.out_numel = self.numel
        slots = op.view_slots or tuple(range(len(self.flat_views)))
        views = [k.input(slot, fv if ix is None else fv[ix])
                 for slot, fv, ix in zip(slots, self.flat_views, idxs, strict=True)]
        out = op.kernel(k, views, self.attrs)
        rdom = tuple(1 if d in pinned else s for d, s in enumerate(dom))
        return k, np.broadcast_to(out.refs, rdom), tuple(pinned)


@dataclass(frozen=True)
class TemplateProgram:
    """The template tree of one op (kind, shapes, attributes): see the module doc. Everything about
    a class (its template, base, coefficients) is read back from its leaves when first asked for."""

    kind: str
    domain: tuple[int, ...]
    length: int  # L, every class padded to it
    registers: int
    classes: int
    pads: tuple[int, ...]  # per class: padding instructions at its front
    leaves: list[bytes]  # class-major, L per class
    levels: list[list[bytes]]
    _parsed: dict[int, tuple[list[Instr], tuple[int, ...], np.ndarray]] = field(
        default_factory=dict, compare=False, repr=False)

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def _class(self, c: int) -> tuple[list[Instr], tuple[int, ...], np.ndarray]:
        got = self._parsed.get(c)
        if got is None:
            n = len(self.domain)
            leaves = self.leaves[c * self.length:(c + 1) * self.length]
            base = struct.unpack(f">{n}I", leaves[0][22 + 4 * n:22 + 8 * n])
            coef = np.frombuffer(b"".join(leaf[22 + 8 * n:] for leaf in leaves), dtype=">i4")
            got = ([Instr.decode(leaf[:21]) for leaf in leaves], base,
                   coef.astype(np.int64).reshape(self.length, 3, n))
            self._parsed[c] = got
        return got

    def template(self, c: int) -> list[Instr]:
        """Class ``c``'s template (padded), the program of its base."""
        return self._class(c)[0]

    def base(self, c: int) -> tuple[int, ...]:
        return self._class(c)[1]

    def coef(self, c: int) -> np.ndarray:
        """Class ``c``'s coefficients, (L, 3 operands, ndim)."""
        return self._class(c)[2]

    def coords(self, element: int) -> tuple[int, ...]:
        if not 0 <= element < max(1, int(np.prod(self.domain))):
            raise TemplateError(f"{self.kind}: no element {element} in a domain of {self.domain}")
        return tuple(int(c) for c in np.unravel_index(element, self.domain)) if self.domain else ()

    def element_class(self, element: int) -> int:
        return class_of(self.kind, self.coords(element), self.domain)[0]

    def padding(self, element: int) -> int:
        """Padding instructions at the front of ``element``'s program."""
        return self.pads[self.element_class(element)]

    def program(self, element: int) -> list[Instr]:
        """The (padded) program of ``element``: its class's template relocated."""
        coords = self.coords(element)
        c = class_of(self.kind, coords, self.domain)[0]
        template, base, coef = self._class(c)
        delta = [a - b for a, b in zip(coords, base, strict=True)]
        return [relocate(ins, coef[m].tolist(), delta) for m, ins in enumerate(template)]

    def leaf_index(self, element: int, m: int) -> int:
        return self.element_class(element) * self.length + m

    def opening(self, element: int, m: int) -> bytes:
        """``programOpening`` of a step proof: abi.encode(bytes leaf, bytes32[] path)."""
        i = self.leaf_index(element, m)
        return abi_encode(["bytes", "bytes32[]"], [self.leaves[i], inclusion_path_from_levels(self.levels, i)])


def _fit(kind: str, tracer: _Tracer, cls: int, base: tuple[int, ...]) -> tuple[list[Instr], int, np.ndarray]:
    """Template (program of ``base``), register count and coefficients of class ``cls``."""
    dom = tracer.domain
    prog, nregs = tracer.program(base)
    sig = _shape_sig(prog)
    coef = np.zeros((len(prog), 3, len(dom)), dtype=np.int64)

    def member(x: tuple[int, ...]) -> bool:
        return all(0 <= c < s for c, s in zip(x, dom, strict=True)) and class_of(kind, x, dom)[0] == cls

    def bump(x: tuple[int, ...], k: int) -> tuple[int, ...]:
        return tuple(c + (1 if i == k else 0) for i, c in enumerate(x))

    for k, size in enumerate(dom):
        if size == 1:
            continue
        starts = [base] + [bump(base, j) for j in range(len(dom)) if j != k]
        pair = next(((x, bump(x, k)) for x in starts if member(x) and member(bump(x, k))), None)
        if pair is None:
            continue  # every element of the class has the base's coordinate k
        p0, _ = tracer.program(pair[0])
        p1, _ = tracer.program(pair[1])
        if _shape_sig(p0) != sig or _shape_sig(p1) != sig:
            raise TemplateError(f"{kind}: elements {pair} of class {cls} have programs of another shape")
        for m, (a, b) in enumerate(zip(p0, p1, strict=True)):
            for i, (sa, sb) in enumerate(zip(a.srcs, b.srcs, strict=True)):
                if not isinstance(sa, Reg):
                    coef[m, i, k] = _signed(_value(sb) - _value(sa))
    return prog, nregs, coef


def _roles(prog: Sequence[Instr], coef: np.ndarray) -> dict[int, np.ndarray] | None:
    """Class 0's coefficients as one vector per input slot, when they are that (every input
    operand of a slot moves alike and no immediate moves), else None."""
    roles: dict[int, np.ndarray] = {}
    for m, ins in enumerate(prog):
        for i, s in enumerate(ins.srcs):
            if isinstance(s, In):
                seen = roles.setdefault(s.slot, coef[m, i])
                if not np.array_equal(seen, coef[m, i]):
                    return None
            elif isinstance(s, Imm) and coef[m, i].any():
                return None
    return roles


def _coef_from_roles(prog: Sequence[Instr], roles: dict[int, np.ndarray], ndim: int) -> np.ndarray:
    coef = np.zeros((len(prog), 3, ndim), dtype=np.int64)
    for m, ins in enumerate(prog):
        for i, s in enumerate(ins.srcs):
            if isinstance(s, In):
                if s.slot not in roles:
                    raise TemplateError(f"input {s.slot} is read by class programs but not by class 0's")
                coef[m, i] = roles[s.slot]
    return coef


def _leaves(templates: list[list[Instr]], dom: tuple[int, ...], bases: list[tuple[int, ...]],
            coefs: list[np.ndarray]) -> list[bytes]:
    """Every template leaf (module doc), class-major; packed with numpy (a softmax has ~30,000)."""
    n = len(dom)
    out: list[bytes] = []
    head = struct.pack(">B", n) + struct.pack(f">{n}I", *dom)
    for c, prog in enumerate(templates):
        fixed = head + struct.pack(f">{n}I", *bases[c])
        co = coefs[c].reshape(len(prog), 3 * n).astype(">i4").tobytes()
        w = 12 * n
        out.extend(ins.encode() + fixed + co[m * w:(m + 1) * w] for m, ins in enumerate(prog))
    return out


def _first_and_last(kind: str, dom: tuple[int, ...], numel: int, nclasses: int
                    ) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """The first and the last element (row-major) of each class."""
    found: list[list[tuple[int, ...] | None]] = [[None] * nclasses, [None] * nclasses]
    for which, order in ((0, range(numel)), (1, range(numel - 1, -1, -1))):
        for e in order:
            x = tuple(int(c) for c in np.unravel_index(e, dom)) if dom else ()
            c = class_of(kind, x, dom)[0]
            if found[which][c] is None:
                found[which][c] = x
                if all(b is not None for b in found[which]):
                    break
    if any(b is None for b in found[0]):
        raise TemplateError(f"{kind} {dom}: a class has no element")
    return [b for b in found[0] if b is not None], [b for b in found[1] if b is not None]


def _template(kind: str, shapes: tuple[tuple[int, ...], ...], attrs: tuple[tuple[str, Any], ...]) -> TemplateProgram:
    if kind not in TEMPLATE_KINDS:
        raise TemplateError(f"{kind} ops are not templated")
    tracer = _Tracer(kind, shapes, dict(attrs))
    dom = tracer.domain
    nclasses = class_of(kind, (0,) * len(dom), dom)[1]
    bases, lasts = _first_and_last(kind, dom, tracer.numel, nclasses)
    # Class 0 is fitted along every coordinate. Where its inputs move by slot alone and no
    # immediate moves (the row ops with a class per column), the other classes take the same
    # movement and only their base is traced; else every class is fitted.
    fits = [_fit(kind, tracer, 0, bases[0])]
    roles = _roles(fits[0][0], fits[0][2]) if nclasses > 4 else None
    for c in range(1, nclasses):
        if roles is None:
            fits.append(_fit(kind, tracer, c, bases[c]))
        else:
            prog, nregs = tracer.program(bases[c])
            fits.append((prog, nregs, _coef_from_roles(prog, roles, len(dom))))
    length = max(len(p) for p, _, _ in fits)
    registers = max(r for _, r, _ in fits)
    templates, coefs = [], []
    for c, (prog, _, coef) in enumerate(fits):
        if prog[-1].dst != 0:
            raise TemplateError(f"{kind}: class {c}'s result is in register {prog[-1].dst}, not 0")
        pad = length - len(prog)
        templates.append([PAD] * pad + prog)
        coefs.append(np.concatenate([np.zeros((pad, 3, len(dom)), dtype=np.int64), coef]))
    pads = tuple(length - len(p) for p, _, _ in fits)
    leaves = _leaves(templates, dom, bases, coefs)
    tp = TemplateProgram(kind, dom, length, registers, nclasses, pads, leaves, [[b""]])
    tp._parsed.update({c: (templates[c], bases[c], coefs[c]) for c in range(nclasses)})
    # The last element of the first, a middle and the last class must be its relocated template
    # (the op is affine per class, as assumed); the tests check many more elements.
    for c in sorted({0, nclasses // 2, nclasses - 1}):
        e = int(np.ravel_multi_index(lasts[c], dom)) if dom else 0
        want, _ = tracer.program(lasts[c])
        if tp.program(e)[pads[c]:] != want:
            raise TemplateError(f"{kind} {shapes}: element {lasts[c]} is not its class's template relocated")
    return dataclasses.replace(tp, levels=tree_levels([leaf_hash(b) for b in leaves]), _parsed=tp._parsed)


def template_program(kind: str, shapes: Sequence[Sequence[int]], attrs: dict[str, Any]) -> TemplateProgram:
    """The template tree of an op (cached per kind, shapes and attributes, in the process and on
    disk: see :func:`_cached`)."""
    return _cached(kind, tuple(tuple(int(d) for d in s) for s in shapes), tuple(sorted(attrs.items())))


_REPO = Path(__file__).resolve().parents[2]


def cache_dir() -> Path | None:
    """Where built templates are kept across processes: ``$VERIGRAD_TEMPLATE_CACHE`` (``0``: nowhere),
    else ``build/templates`` at the repository root."""
    env = os.environ.get("VERIGRAD_TEMPLATE_CACHE")
    if env == "0":
        return None
    return Path(env) if env else _REPO / "build" / "templates"


@functools.lru_cache(maxsize=1)
def _source_digest() -> bytes:
    """Hash of everything a template depends on besides the op: the RepOps kernels and tracer, and
    this module (its class rules and leaf layout)."""
    h = hashlib.sha256()
    for path in sorted((Path(__file__).resolve().parents[1] / "repops").glob("*.py")) + [Path(__file__).resolve()]:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.digest()


@functools.lru_cache(maxsize=128)
def _cached(kind: str, shapes: tuple[tuple[int, ...], ...], attrs: tuple[tuple[str, Any], ...]) -> TemplateProgram:
    """:func:`_template`, kept on disk under a hash of the op and of :func:`_source_digest`, so a
    new process (a solver pricing a task, a test worker) reads a tiny-gpt op's templates back
    instead of tracing them again; a changed kernel, tracer or class rule gets a new key. The file
    holds the tree's leaves and levels. Like the CPU fast path's build cache it is trusted as this
    machine's own output: a damaged file is rebuilt; a forged one could at worst make this
    machine's graph root differ from the task's, and the solver then skips the task."""
    directory = cache_dir()
    if directory is None:
        return _template(kind, shapes, attrs)
    key = hashlib.sha256(_source_digest() + repr((kind, shapes, attrs)).encode()).hexdigest()
    path = directory / f"{key}.pkl"
    try:
        with path.open("rb") as src:
            meta, leaves_blob, level_blobs = pickle.load(src)
        size = 22 + 20 * len(meta["domain"])
        leaves = [leaves_blob[i:i + size] for i in range(0, len(leaves_blob), size)]
        levels = [[blob[i:i + 32] for i in range(0, len(blob), 32)] for blob in level_blobs]
        if hash_leaves_ok(leaves, levels):
            return TemplateProgram(kind, tuple(meta["domain"]), meta["length"], meta["registers"], meta["classes"],
                                   tuple(meta["pads"]), leaves, levels)
    except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError):
        pass
    tp = _template(kind, shapes, attrs)
    meta = {"domain": list(tp.domain), "length": tp.length, "registers": tp.registers, "classes": tp.classes,
            "pads": list(tp.pads)}
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, delete=False, suffix=".tmp") as dst:
            pickle.dump((meta, b"".join(tp.leaves), [b"".join(level) for level in tp.levels]), dst, protocol=5)
        os.replace(dst.name, path)  # atomic: a concurrent reader sees the old file or the whole new one
    except OSError:
        pass  # a read-only tree: the process cache still serves
    return tp


def hash_leaves_ok(leaves: list[bytes], levels: list[list[bytes]]) -> bool:
    """Whether a cached tree is whole: as many leaf hashes as leaves, and a single root."""
    return bool(levels) and len(levels[0]) == len(leaves) and len(levels[-1]) == 1
