"""Exact L1 (sum of absolute differences) distances and k-nearest neighbours on uint8 vectors.

On the CPU the neighbours come from numba kernels that never store a distance matrix. A thread takes a
block of queries (:data:`QUERY_BLOCK`, which stays in L2) and passes the references over it once, a tile
of :data:`REF_BLOCK` rows at a time: their distances to every query of the block are computed a group of
4 references (in L1, the next group prefetched from memory meanwhile) against every group of 4 queries,
then merged into each query's sorted list of the k best (a vectorised minimum first, so a row with no
distance under the k-th best costs a few instructions). Threads take query blocks in turn from a queue,
in shrinking sizes towards its end, so they finish together even when a core is slowed by other work.
The references may come in parts (train, then val), indexed as their concatenation.

The distances:

* on x86-64 with AVX2 or AVX-512BW, code written here (a numba ``@intrinsic``): ``vpsadbw`` (sum of
  absolute differences of 8 bytes into a 64-bit lane) on 32- or 64-byte unaligned chunks, accumulated with
  ``vpaddq``, register-blocked so that each chunk loaded serves 4 x 4 query x reference pairs (2 x 4 with
  AVX2's 16 registers); with AVX-512 that main loop is inline assembly scheduling the ``vpsadbw`` in
  groups of 8 before their ``vpaddq`` (LLVM's own schedule of the same instructions ran 8% slower on
  Zen 4), elsewhere LLVM IR; a shuffle-and-add tree turns the 16 accumulators into 16 distances; row
  lengths that are not a multiple of the chunk finish with narrower ``psadbw`` steps and single bytes;
* anywhere else, a portable kernel: per-byte ``max - min`` summed in uint32, which LLVM vectorises with
  byte max/min/sub and widening adds but *not* with ``psadbw``.

Both give identical uint32 results (sums over 2**32 wrap the same way). Which one runs (:data:`KERNEL`)
follows the ISA numba compiles for (the host CPU, or ``NUMBA_CPU_FEATURES``).

Each byte difference costs at least a share of a ``vpsadbw`` and of the ``vpaddq`` that accumulates it, so
the machine's limit is the rate of a tight ``vpsadbw`` + ``vpaddq`` loop on data in L1, per core, times
the cores; ``tests/benchmarks/test_nn_l1_limit.py`` measures it, and sets nn-l1 beside it, beside faiss
and beside ``torch.cdist``. Measured on an AMD EPYC Zen 4 (2 cores at 3.65 GHz, shared with other work),
in byte differences per CPU second: that loop 206e9 at best (``vpsadbw`` alone 233e9, 64 a cycle); this
module's AVX-512 kernel about 180e9 (4 x 4 blocks from L1 alone: 190e9), its AVX2 one 153e9 (compiled
for a 16-register AVX2 CPU), the portable one 27e9; faiss's exact L1 search 3e9, ``torch.cdist(p=1)``
1.2e9. The whole nn-l1 job on CIFAR-10 (k chosen on val, then test: 2.2e12 byte differences) took 12.2
CPU seconds, 1.13x the limit's 10.8 (before this kernel: 17.4, 1.6x).

On CUDA the same distances come from ``torch.cdist(p=1)`` in float32, which is exact here because every
distance is an integer below 2**24 (at most 3072 * 255).

Neighbours are ordered by (distance, reference index), so ties resolve the same way on every device.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import numpy as np
from llvmlite import binding, ir
from numba import get_num_threads, literally, njit, types
from numba.core import cgutils
from numba.core import config as numba_config
from numba.extending import intrinsic, overload

TORCH_QUERY_CHUNK = 1024  # queries per torch.cdist call on CUDA (x references x 4 bytes of distances)
QUERY_BLOCK = 128  # queries per task handed to a thread: they stay in L2 (128 x 3072 bytes = 384 KiB)
MIN_QUERY_BLOCK = 32  # the smallest task, at the end of the queue
REF_BLOCK = 64  # references per tile of distances merged into the top-k lists (x QUERY_BLOCK x 4 = 32 KiB)

_PSADBW = {  # LLVM's x86 "sum of absolute differences" intrinsics, by vector width in bytes
    16: "llvm.x86.sse2.psad.bw",
    32: "llvm.x86.avx2.psad.bw",
    64: "llvm.x86.avx512.psad.bw.512",
}


def _psadbw_width() -> int:
    """Widest ``psadbw`` (64: AVX-512BW, 32: AVX2, 0: neither) in the ISA numba compiles for here.

    Numba targets the host CPU's features unless ``NUMBA_CPU_FEATURES`` overrides them, so that is what
    decides; a non-x86 machine (or ``NUMBA_DISABLE_JIT``) gets 0 and with it the portable kernel.
    """
    if numba_config.DISABLE_JIT or platform.machine().lower() not in ("x86_64", "amd64"):
        return 0
    features = numba_config.CPU_FEATURES
    if features is None:
        features = binding.get_host_cpu_features().flatten()
    enabled = {f[1:] for f in features.split(",") if f.startswith("+")}
    if {"avx512f", "avx512bw"} <= enabled:
        return 64
    return 32 if "avx2" in enabled else 0


SAD_WIDTH = _psadbw_width()


#: which kernel runs here: ``sad64`` (AVX-512BW), ``sad32`` (AVX2) or ``portable``
KERNEL = {64: "sad64", 32: "sad32"}.get(SAD_WIDTH, "portable")


def _reduction_rounds(nlanes: int) -> list[tuple[list[int], list[int]]]:
    """The shuffle masks (into ``x || y``) of each round of the accumulators' reduction (``nlanes`` 64-bit
    lanes a vector, a power of 2 from 2), checked by following which partial sums each lane holds."""
    pairs = [(k // 2, k % 2) for k in range(nlanes)]  # lane k of the result: pair k // 2, member k % 2
    interleave = [2 * p + m * nlanes for p, m in pairs]  # x0 y0 x2 y2 ...; + 1: x1 y1 x3 y3 ...
    halves = [4 * p + m for p, m in pairs]  # the even 128-bit lanes of x || y; + 2: the odd ones
    rounds = [(interleave, [k + 1 for k in interleave])]
    rounds += [(halves, [k + 2 for k in halves])] * (nlanes.bit_length() - 2)
    vecs = [[{(v, lane)} for lane in range(nlanes)] for v in range(nlanes)]  # (vector, lane) summed
    for first, second in rounds:
        vecs = [[(x + y)[i] | (x + y)[j] for i, j in zip(first, second, strict=True)]
                for x, y in zip(vecs[0::2], vecs[1::2], strict=True)]
    assert vecs == [[{(lane, k) for k in range(nlanes)} for lane in range(nlanes)]], nlanes
    return rounds


def _asm_sad_loop(rows: int, cols: int, group: int) -> tuple[str, str]:
    """The main loop of an AVX-512 ``rows x cols`` block as x86 assembly (AT&T) and its LLVM constraints.

    Operands: ``$0 .. $(p-1)`` the ``p = rows * cols`` accumulators (zmm, out), ``$p`` the byte offset (out,
    scratch), then the ``rows`` query and ``cols`` reference row pointers, then the bytes to cover (a
    multiple of 64). The last ``rows + cols + group`` of the 32 zmm registers hold the loaded chunks and
    the ``vpsadbw`` results. The ``vpsadbw`` come in groups of ``group``, each followed by its ``vpaddq``:
    on AMD Zen 4, LLVM's own schedule of the same instructions (each ``vpaddq`` soon after its
    ``vpsadbw``) ran about 8% slower than groups of 8. (With AVX2 the assembly gained nothing.)
    """
    pairs = rows * cols
    offset, first_ptr, end = pairs, pairs + 1, pairs + 1 + rows + cols
    q = 32 - rows - cols - group  # zmm numbers: loaded queries, loaded refs, results
    r, t = q + rows, q + rows + cols
    assert q >= pairs, (rows, cols, group)
    lines = [f"vpxorq ${p}, ${p}, ${p}" for p in range(pairs)]
    lines += [f"xorq ${offset}, ${offset}", f"testq ${end}, ${end}", "jz 2f", "1:"]
    lines += [f"vmovdqu64 (${first_ptr + a}, ${offset}), %zmm{q + a}" for a in range(rows)]
    lines += [f"vmovdqu64 (${first_ptr + rows + b}, ${offset}), %zmm{r + b}" for b in range(cols)]
    for g in range(0, pairs, group):
        members = range(g, min(pairs, g + group))
        lines += [f"vpsadbw %zmm{r + p % cols}, %zmm{q + p // cols}, %zmm{t + p - g}" for p in members]
        lines += [f"vpaddq %zmm{t + p - g}, ${p}, ${p}" for p in members]
    lines += [f"addq $$64, ${offset}", f"cmpq ${offset}, ${end}", "jne 1b", "2:"]
    clobbers = [f"~{{zmm{z}}}" for z in range(q, 32)] + ["~{flags}", "~{memory}"]
    constraints = ["=&v"] * pairs + ["=&r"] + ["r"] * (rows + cols + 1) + clobbers
    return "\n".join(lines), ",".join(constraints)


#: the blocks (width, rows, cols) whose main loop is assembly: (code, constraints); the others are LLVM IR
_ASM_LOOPS = {(64, 4, 4): _asm_sad_loop(4, 4, group=8)}
binding.initialize_native_asmparser()  # numba's LLVM assembles inline assembly only with it


def _sad_tile_codegen(width: int, rows: int, cols: int, tails: bool):
    """LLVM IR storing the L1 distances of ``rows`` consecutive queries x ``cols`` consecutive refs.

    One pass over the row length: ``width``-byte chunks of every row are loaded once and fed to
    ``psadbw`` (which sums |a - b| over each 8 bytes into a 64-bit lane) against every row of the other
    side, accumulating in 64-bit lanes; then at most one 32- and one 16-byte step into the same lanes.
    A transposing tree of shuffles and adds turns the ``rows x cols`` accumulators into vectors whose
    lanes are whole distances, which are truncated to 32 bits (as the portable kernel's uint32 sums wrap)
    and stored a row at a time; a last bytes-at-a-time loop (rows not a multiple of 16 bytes) adds to them.
    Without ``tails`` the row length must be a multiple of ``width`` (no code for the rest: the 16
    accumulators then need no spilling around it).
    """
    i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
    nlanes = width // 8

    def const(v: int) -> ir.Constant:
        return ir.Constant(i64, v)

    def lane_mask(indices: Iterable[int]) -> ir.Constant:
        values = [ir.Constant(i32, v) for v in indices]
        return ir.Constant(ir.VectorType(i32, len(values)), values)

    def codegen(context, builder, signature, args):
        qty, _, rty, _, oty = signature.args[:5]
        qarr = context.make_array(qty)(context, builder, args[0])
        rarr = context.make_array(rty)(context, builder, args[2])
        oarr = context.make_array(oty)(context, builder, args[4])
        i, j, orow, ocol = (context.cast(builder, args[n], signature.args[n], types.intp) for n in (1, 3, 5, 6))
        n = builder.extract_value(qarr.shape, 1)
        qstride = builder.extract_value(qarr.strides, 0)
        rstride = builder.extract_value(rarr.strides, 0)
        ostride = builder.extract_value(oarr.strides, 0)
        qrows = [builder.gep(qarr.data, [builder.mul(builder.add(i, const(a)), qstride)]) for a in range(rows)]
        rrows = [builder.gep(rarr.data, [builder.mul(builder.add(j, const(b)), rstride)]) for b in range(cols)]
        obytes = builder.bitcast(oarr.data, i8.as_pointer())
        col_offset = builder.mul(ocol, const(4))
        orows = [builder.gep(obytes, [builder.add(builder.mul(builder.add(orow, const(a)), ostride), col_offset)])
                 for a in range(rows)]
        pairs = [(a, b) for a in range(rows) for b in range(cols)]
        lanes = ir.VectorType(i64, nlanes)
        pos = cgutils.alloca_once_value(builder, const(0))

        def sads(w: int, offset) -> list:
            vec = ir.VectorType(i8, w)
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VectorType(i64, w // 8), [vec, vec]), _PSADBW[w])

            def load(row):
                return builder.load(builder.bitcast(builder.gep(row, [offset]), vec.as_pointer()), align=1)

            qv = [load(row) for row in qrows]
            rv = [load(row) for row in rrows]
            return [builder.call(fn, [qv[a], rv[b]]) for a, b in pairs]

        # main loop over whole chunks, accumulating vectors
        accs = [cgutils.alloca_once_value(builder, ir.Constant(lanes, None)) for _ in pairs]
        chunks = builder.udiv(n, const(width))
        if (width, rows, cols) in _ASM_LOOPS:
            code, constraints = _ASM_LOOPS[width, rows, cols]
            sums = builder.asm(ir.FunctionType(ir.LiteralStructType([lanes] * len(pairs) + [i64]),
                                               [i8.as_pointer()] * (rows + cols) + [i64]),
                               code, constraints, [*qrows, *rrows, builder.mul(chunks, const(width))],
                               side_effect=False)
            for p, acc in enumerate(accs):
                builder.store(builder.extract_value(sums, p), acc)
        else:
            with cgutils.for_range(builder, chunks) as loop:
                for acc, v in zip(accs, sads(width, builder.mul(loop.index, const(width))), strict=True):
                    builder.store(builder.add(builder.load(acc), v), acc)
        builder.store(builder.mul(chunks, const(width)), pos)

        # fewer than `width` bytes left: one narrower step of each width that still fits, into the low lanes
        for w in (32, 16):
            if w >= width or not tails:
                continue
            start = builder.load(pos)
            low = lane_mask([*range(w // 8), *[w // 8] * (nlanes - w // 8)])  # then zeros
            with builder.if_then(builder.icmp_unsigned(">=", builder.sub(n, start), const(w))):
                for acc, v in zip(accs, sads(w, start), strict=True):
                    widened = builder.shuffle_vector(v, ir.Constant(v.type, None), low)
                    builder.store(builder.add(builder.load(acc), widened), acc)
                builder.store(builder.add(start, const(w)), pos)

        # reduce: log2(lanes) rounds over neighbouring vectors x, y, each adding two shuffles of x || y;
        # the first interleaves 64-bit lanes within each 128-bit lane (vpunpck[lh]qdq), the later ones
        # move whole 128-bit lanes (vshufi64x2), cheaper than a lane-by-lane permute; after that, lane l of
        # vector g holds the whole sum of accumulator g * lanes + l (checked in `_reduction_rounds`)
        vecs = [builder.load(acc) for acc in accs]
        vecs += [ir.Constant(lanes, None)] * (-len(vecs) % nlanes)
        for first, second in _reduction_rounds(nlanes):
            vecs = [builder.add(builder.shuffle_vector(x, y, lane_mask(first)),
                                builder.shuffle_vector(x, y, lane_mask(second)))
                    for x, y in zip(vecs[0::2], vecs[1::2], strict=True)]
        sums = [builder.trunc(v, ir.VectorType(i32, nlanes)) for v in vecs]

        # store each row's cols distances (one vector store when they share a result vector)
        for a in range(rows):
            first = a * cols
            g, lane = divmod(first, nlanes)
            if lane + cols <= nlanes:
                part = builder.shuffle_vector(sums[g], sums[g], lane_mask(range(lane, lane + cols)))
                builder.store(part, builder.bitcast(orows[a], part.type.as_pointer()), align=4)
                continue
            for b in range(cols):
                g, lane = divmod(first + b, nlanes)
                ptr = builder.bitcast(builder.gep(orows[a], [const(4 * b)]), i32.as_pointer())
                builder.store(builder.extract_element(sums[g], ir.Constant(i32, lane)), ptr, align=4)

        # fewer than 16 bytes left: one byte at a time, added to the stored distances
        if not tails:
            return context.get_dummy_value()
        tail = builder.load(pos)
        with builder.if_then(builder.icmp_unsigned("<", tail, n), likely=False):
            totals = [cgutils.alloca_once_value(builder, ir.Constant(i32, 0)) for _ in pairs]
            with cgutils.for_range_slice(builder, tail, n, const(1)) as (k, _):
                qb = [builder.zext(builder.load(builder.gep(row, [k])), i32) for row in qrows]
                rb = [builder.zext(builder.load(builder.gep(row, [k])), i32) for row in rrows]
                for tot, (a, b) in zip(totals, pairs, strict=True):
                    diff = builder.sub(qb[a], rb[b])
                    absdiff = builder.select(builder.icmp_signed("<", diff, ir.Constant(i32, 0)), builder.neg(diff),
                                             diff)
                    builder.store(builder.add(builder.load(tot), absdiff), tot)
            for tot, (a, b) in zip(totals, pairs, strict=True):
                ptr = builder.bitcast(builder.gep(orows[a], [const(4 * b)]), i32.as_pointer())
                builder.store(builder.add(builder.load(ptr, align=4), builder.load(tot)), ptr, align=4)
        return context.get_dummy_value()

    return codegen


@intrinsic
def _sad_tile(typingctx, queries, i, refs, j, out, orow, ocol, width, rows, cols, tails):
    """Store the uint32 L1 distances of ``queries[i:i + rows]`` x ``refs[j:j + cols]`` into
    ``out[orow:orow + rows, ocol:ocol + cols]``.

    ``queries`` and ``refs`` are C-contiguous 2-D uint8 arrays with equal row lengths, ``out`` a C-contiguous
    2-D uint32 array; ``width`` (32 or 64, compile-time) picks AVX2 or AVX-512BW ``psadbw``, which the target
    CPU must have; ``tails`` (0 or 1, compile-time) 0 only when the row length is a multiple of ``width``.
    Nothing is bounds-checked.
    """
    lits = (width, rows, cols, tails)
    if not all(isinstance(t, (types.IntegerLiteral, types.BooleanLiteral)) for t in lits):
        return None
    w, m, n, rest = (t.literal_value for t in lits)
    arrays_ok = all(isinstance(a, types.Array) and a.dtype == types.uint8 and a.ndim == 2 and a.layout == "C"
                    for a in (queries, refs))  # read-only arrays too
    out_ok = isinstance(out, types.Array) and out.dtype == types.uint32 and out.ndim == 2 and out.layout == "C"
    if w not in (32, 64) or min(m, n) < 1 or m * n > 24 or not arrays_ok or not out_ok:
        return None
    sig = types.none(queries, i, refs, j, out, orow, ocol, width, rows, cols, tails)
    return sig, _sad_tile_codegen(w, m, n, bool(rest))


@intrinsic
def _prefetch(typingctx, array, start, stop):
    """Ask for bytes ``start:stop`` of a C-contiguous array's data to be brought into L2, one ``prefetcht1``
    per 64-byte line; a hint with no effect on results (nothing is read; no-op on CPUs without it)."""
    if not (isinstance(array, types.Array) and array.layout == "C"):
        return None

    def codegen(context, builder, signature, args):
        i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
        base = builder.bitcast(context.make_array(signature.args[0])(context, builder, args[0]).data, i8.as_pointer())
        begin, end = (context.cast(builder, args[n], signature.args[n], types.intp) for n in (1, 2))
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8.as_pointer(), i32, i32, i32]), "llvm.prefetch.p0i8")
        with cgutils.for_range_slice(builder, begin, end, ir.Constant(i64, 64)) as (offset, _):
            # read, locality 2 (L2 and out), data cache
            builder.call(fn, [builder.gep(base, [offset]), ir.Constant(i32, 0), ir.Constant(i32, 2),
                              ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.none(array, start, stop), codegen


def _fill_tile(queries, q0, q1, refs, r0, r1, out, orow, ocol, width, rows, cols, tails):
    """``out[orow + i - q0, ocol + j - r0] = L1(queries[i], refs[j])`` for ``q0 <= i < q1``, ``r0 <= j < r1``:
    numba-only (its implementation follows the compile-time ``width``, see below)."""
    raise NotImplementedError("numba-only")


@overload(_fill_tile, prefer_literal=True, jit_options={"boundscheck": False})
def _fill_tile_impl(queries, q0, q1, refs, r0, r1, out, orow, ocol, width, rows, cols, tails):
    if not isinstance(width, types.IntegerLiteral):
        return None
    if width.literal_value == 0:
        return _fill_tile_portable

    def fill_sad(queries, q0, q1, refs, r0, r1, out, orow, ocol, width, rows, cols, tails):
        # blocks of rows x cols distances, a group of `cols` refs at a time (it stays in L1) against every
        # group of `rows` queries (they stay in L2); leftover queries and refs go one at a time. Meanwhile
        # the next group of refs is fetched from memory, a slice per query group.
        groups = (q1 - q0 + rows - 1) // rows
        stride = refs.strides[0]
        j = r0
        while j < r1:
            whole = j + cols <= r1
            ahead0 = min(refs.shape[0], j + cols) * stride
            ahead = min(refs.shape[0], j + 2 * cols) * stride - ahead0
            i = q0
            while i < q1:
                g = (i - q0) // rows
                _prefetch(refs, ahead0 + ahead * g // groups, ahead0 + ahead * (g + 1) // groups)
                if i + rows <= q1 and whole:
                    _sad_tile(queries, i, refs, j, out, orow + i - q0, ocol + j - r0, width, rows, cols, tails)
                elif i + rows <= q1:
                    _sad_tile(queries, i, refs, j, out, orow + i - q0, ocol + j - r0, width, rows, 1, tails)
                else:
                    for a in range(i, q1):
                        if whole:
                            _sad_tile(queries, a, refs, j, out, orow + a - q0, ocol + j - r0, width, 1, cols, tails)
                        else:
                            _sad_tile(queries, a, refs, j, out, orow + a - q0, ocol + j - r0, width, 1, 1, tails)
                i += rows
            j += cols if whole else 1

    return fill_sad


def _fill_tile_portable(queries, q0, q1, refs, r0, r1, out, orow, ocol, width, rows, cols, tails):
    # plain per-byte max - min; LLVM vectorises it with max/min/sub and widening adds (no psadbw)
    d = queries.shape[1]
    for i in range(q0, q1):
        x = queries[i]
        for j in range(r0, r1):
            y = refs[j]
            s = np.uint32(0)
            for t in range(d):
                s += np.uint32(np.uint8(max(x[t], y[t]) - min(x[t], y[t])))
            out[orow + i - q0, ocol + j - r0] = s


@njit(boundscheck=False, nogil=True)
def _l1_rows(queries, refs, out, q0, q1, rblock, width, rows, cols) -> None:
    # out[q0:q1] for all refs, a tile of rblock refs at a time (the order of _knn_rows, without the merging)
    literally(width)
    literally(rows)
    literally(cols)
    nr = refs.shape[0]
    whole = width > 0 and queries.shape[1] % max(width, 1) == 0  # no code for row tails needed
    for r0 in range(0, nr, rblock):
        r1 = min(nr, r0 + rblock)
        if whole:
            _fill_tile(queries, q0, q1, refs, r0, r1, out, q0, r0, width, rows, cols, 0)
        else:
            _fill_tile(queries, q0, q1, refs, r0, r1, out, q0, r0, width, rows, cols, 1)


@njit(boundscheck=False, nogil=True, inline="always")
def _merge_smallest(dists, count, ref0, best_d, best_i) -> None:
    # the sorted best list (best_d ascending, best_i their columns) absorbs dists[:count] of columns
    # ref0, ref0 + 1, ...; a column enters only before a strictly larger distance, so equal distances stay
    # in column order as long as columns arrive in increasing order
    k = best_d.shape[0]
    worst = best_d[k - 1]
    nearest = dists[0]
    for c in range(1, count):  # vectorised; usually no distance beats the k-th best
        nearest = min(nearest, dists[c])
    if np.int64(nearest) >= worst:
        return
    for c in range(count):
        d = np.int64(dists[c])
        if d < worst:
            p = k - 1
            while p > 0 and best_d[p - 1] > d:
                best_d[p] = best_d[p - 1]
                best_i[p] = best_i[p - 1]
                p -= 1
            best_d[p] = d
            best_i[p] = ref0 + c
            worst = best_d[k - 1]


@njit(boundscheck=False, nogil=True)
def _knn_rows(queries, refs, best_d, best_i, q0, q1, rblock, ref0, width, rows, cols) -> None:
    # merge refs (reference indices ref0, ref0 + 1, ...) into the sorted lists best_d[q0:q1], best_i[q0:q1]
    # of the k = best_d.shape[1] nearest so far, a (q1 - q0) x rblock tile of distances at a time (no
    # distance matrix is ever stored)
    literally(width)
    literally(rows)
    literally(cols)
    nr = refs.shape[0]
    whole = width > 0 and queries.shape[1] % max(width, 1) == 0  # no code for row tails needed
    tile = np.empty((q1 - q0, rblock), np.uint32)
    for r0 in range(0, nr, rblock):
        r1 = min(nr, r0 + rblock)
        if whole:
            _fill_tile(queries, q0, q1, refs, r0, r1, tile, 0, 0, width, rows, cols, 0)
        else:
            _fill_tile(queries, q0, q1, refs, r0, r1, tile, 0, 0, width, rows, cols, 1)
        for i in range(q0, q1):
            _merge_smallest(tile[i - q0], r1 - r0, ref0 + r0, best_d[i], best_i[i])


# entry points with the kernel's shape as compile-time constants (called from Python with plain ints, the
# drivers above would go through numba's literal re-dispatch, a type inference pass, on every call); psadbw
# width x query rows x ref cols per register block: 4 x 4 uses 16 accumulators + 8 loaded vectors + 8
# results, AVX-512's 32 registers; with AVX2's 16, 2 x 4 (fewer query rows to load from L2 than 4 x 2:
# 155e9 against 134e9 byte differences per CPU second on Zen 4 compiled for Haswell)
@njit(cache=True, nogil=True)
def _knn_rows_sad64(queries, refs, best_d, best_i, q0, q1, rblock, ref0):
    _knn_rows(queries, refs, best_d, best_i, q0, q1, rblock, ref0, 64, 4, 4)


@njit(cache=True, nogil=True)
def _knn_rows_sad32(queries, refs, best_d, best_i, q0, q1, rblock, ref0):
    _knn_rows(queries, refs, best_d, best_i, q0, q1, rblock, ref0, 32, 2, 4)


@njit(cache=True, nogil=True)
def _knn_rows_portable(queries, refs, best_d, best_i, q0, q1, rblock, ref0):
    _knn_rows(queries, refs, best_d, best_i, q0, q1, rblock, ref0, 0, 1, 1)


@njit(cache=True, nogil=True)
def _l1_rows_sad64(queries, refs, out, q0, q1, rblock):
    _l1_rows(queries, refs, out, q0, q1, rblock, 64, 4, 4)


@njit(cache=True, nogil=True)
def _l1_rows_sad32(queries, refs, out, q0, q1, rblock):
    _l1_rows(queries, refs, out, q0, q1, rblock, 32, 2, 4)


@njit(cache=True, nogil=True)
def _l1_rows_portable(queries, refs, out, q0, q1, rblock):
    _l1_rows(queries, refs, out, q0, q1, rblock, 0, 1, 1)


#: the kernels by name (those needing an ISA this CPU lacks must not be called)
KNN_KERNELS = {"sad64": _knn_rows_sad64, "sad32": _knn_rows_sad32,
               "portable": _knn_rows_portable}
L1_KERNELS = {"sad64": _l1_rows_sad64, "sad32": _l1_rows_sad32,
              "portable": _l1_rows_portable}


def _as_rows(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise TypeError(f"{name} must be uint8, got {x.dtype}")
    return np.ascontiguousarray(x.reshape(len(x), int(np.prod(x.shape[1:]))))  # -1 fails on 0 rows


def _reference_parts(queries: np.ndarray, refs: np.ndarray | Sequence[np.ndarray]
                     ) -> tuple[np.ndarray, list[np.ndarray]]:
    q = _as_rows(queries, "queries")
    parts = [_as_rows(p, "refs") for p in ([refs] if isinstance(refs, np.ndarray) else refs)]
    for p in parts:
        if p.shape[1] != q.shape[1]:
            raise ValueError(f"queries have {q.shape[1]} values per row, refs {p.shape[1]}")
    return q, parts


def _query_blocks(count: int, threads: int) -> list[tuple[int, int]]:
    """``[(q0, q1), ...]`` covering ``range(count)``: :data:`QUERY_BLOCK` queries, then ever smaller blocks
    (half of each thread's share of what is left, at least :data:`MIN_QUERY_BLOCK`, multiples of 4) so that
    the threads finish together."""
    blocks, start = [], 0
    while start < count:
        share = -(-(count - start) // (2 * threads))
        size = min(QUERY_BLOCK, -(-max(MIN_QUERY_BLOCK, share) // 4) * 4)
        blocks.append((start, min(count, start + size)))
        start += size
    return blocks


def _run_blocks(task: Callable[[int, int], None], count: int, threads: int | None,
                progress: Callable[..., Iterable[Any]] | None) -> None:
    """``task(q0, q1)`` for every block of :func:`_query_blocks` of ``count`` queries, on ``threads``
    threads (default: numba's thread count, which the runner sets to the job's), each taking the next block
    as it finishes one, so a core slowed by other work does fewer of them."""
    threads = max(1, threads or get_num_threads())
    blocks = _query_blocks(count, threads)
    threads = min(threads, len(blocks))
    wrap = progress or (lambda it, **_: it)
    if threads <= 1:
        for q0, q1 in wrap(blocks, desc="L1 neighbours", total=len(blocks)):
            task(q0, q1)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="l1") as pool:
        futures = [pool.submit(task, q0, q1) for q0, q1 in blocks]
        for done in wrap(as_completed(futures), desc="L1 neighbours", total=len(futures)):
            done.result()


def l1_distances(queries: np.ndarray, refs: np.ndarray, threads: int | None = None,
                 kernel: str | None = None) -> np.ndarray:
    """``(Q, R)`` uint32 L1 distances between uint8 rows (any trailing shape is flattened).

    ``kernel`` names one of :data:`L1_KERNELS` (default :data:`KERNEL`, the one for this CPU).
    """
    q, (r,) = _reference_parts(queries, refs)
    fn = L1_KERNELS[kernel or KERNEL]
    out = np.empty((len(q), len(r)), np.uint32)
    if len(q) and len(r):
        _run_blocks(lambda q0, q1: fn(q, r, out, q0, q1, REF_BLOCK), len(q), threads, None)
    return out


def l1_knn(queries: np.ndarray, refs: np.ndarray | Sequence[np.ndarray], k: int, device: str = "cpu",
           progress: Callable[..., Iterable[Any]] | None = None, threads: int | None = None,
           kernel: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest references of every query under L1.

    ``refs`` is one array of reference rows, or a sequence of arrays that are consecutive parts of one
    reference set (indexed as their concatenation, which is never built). Returns ``(distances (Q, k)
    int64, indices (Q, k) int64)``, nearest first, ties by reference index. On the CPU, ``threads`` threads
    (default numba's count) take blocks of queries in turn, and ``kernel`` names one of
    :data:`KNN_KERNELS` (default :data:`KERNEL`, the one for this CPU).
    """
    q, parts = _reference_parts(queries, refs)
    total = sum(len(p) for p in parts)
    k = min(k, total)
    if k < 1:
        raise ValueError("need at least one reference and k >= 1")
    if device.startswith("cuda"):
        return _knn_torch(q, np.concatenate(parts) if len(parts) > 1 else parts[0], k, device,
                          progress or (lambda it, **_: it))
    fn = KNN_KERNELS[kernel or KERNEL]
    best_d = np.full((len(q), k), np.iinfo(np.int64).max, np.int64)
    best_i = np.full((len(q), k), -1, np.int64)
    starts = np.cumsum([0] + [len(p) for p in parts[:-1]])

    def merge_all(q0: int, q1: int) -> None:
        for part, start in zip(parts, starts, strict=True):
            if len(part):
                fn(q, part, best_d, best_i, q0, q1, REF_BLOCK, int(start))

    _run_blocks(merge_all, len(q), threads, progress)
    return best_d, best_i


def _knn_torch(q: np.ndarray, r: np.ndarray, k: int, device: str, wrap: Callable[..., Iterable[Any]]
               ) -> tuple[np.ndarray, np.ndarray]:
    import torch

    refs = torch.from_numpy(r).to(device).float()
    ref_index = torch.arange(len(r), device=device, dtype=torch.float64)
    out_d, out_i = [], []
    starts = range(0, len(q), TORCH_QUERY_CHUNK)
    for s in wrap(starts, desc="L1 neighbours", total=len(starts)):
        qs = torch.from_numpy(q[s:s + TORCH_QUERY_CHUNK]).to(device).float()
        d = torch.cdist(qs, refs, p=1).round().double()  # exact integers below 2**24
        key = d * len(r) + ref_index
        _, i = torch.topk(key, k, dim=1, largest=False, sorted=True)
        out_d.append(torch.gather(d, 1, i).long().cpu().numpy())
        out_i.append(i.cpu().numpy())
    return np.concatenate(out_d), np.concatenate(out_i)


def vote(neighbour_labels: np.ndarray, k: int, num_classes: int) -> np.ndarray:
    """Majority vote over the first ``k`` neighbours of each row (nearest first).

    A tie between classes goes to the tied class whose nearest member ranks first.
    """
    lab = neighbour_labels[:, :k]
    n = len(lab)
    counts = np.zeros((n, num_classes), np.int64)
    np.add.at(counts, (np.repeat(np.arange(n), lab.shape[1]), lab.ravel()), 1)
    first = np.full((n, num_classes), k, np.int64)
    for rank in range(lab.shape[1] - 1, -1, -1):
        first[np.arange(n), lab[:, rank]] = rank
    return np.argmax(counts * (k + 1) - first, axis=1)
