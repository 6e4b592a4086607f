"""The diameter search of the in-plane measurement: convex hull, antipodal (rotating-calipers)
pairs, the farthest pairs of a point set, and the inside chords of a polygon along a direction.

Pure geometry on ``(n, 2)`` arrays of points (any units; :mod:`recist_tool.measure.planar` passes
slice-local millimetres). :func:`farthest_pairs` finds the long axis's end-point candidates of an
outline, :func:`chords_at` the chords :func:`recist_tool.measure.planar.perpendicular_chord`
searches for the short axis, :func:`far_candidates` prunes a 3D point set as well
(:mod:`recist_tool.measure.mask`). ``tests/measure/test_geometry_kernels.py`` checks each against
its brute-force definition.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError

__all__ = ["antipodal_pairs", "chords_at", "convex_hull_2d", "diametral_pairs", "far_candidates",
           "farthest_pairs", "hull_diameter", "unique_rows"]


def unique_rows(points: np.ndarray) -> np.ndarray:
    """The distinct rows of an ``(n, 2)`` array, sorted lexicographically (as
    ``numpy.unique(points, axis=0)``, which costs far more on small arrays).

    Parameters
    ----------
    points : numpy.ndarray
        ``(n, 2)``; any dtype.

    Returns
    -------
    numpy.ndarray
        ``(m, 2)``, ``m <= n``: each distinct row once, in ``(y, x)`` order.
    """
    p = np.asarray(points)
    if p.shape[0] < 2:
        return p.copy()
    p = p[np.lexsort((p[:, 1], p[:, 0]))]
    keep = np.empty(p.shape[0], bool)
    keep[0] = True
    np.any(p[1:] != p[:-1], axis=1, out=keep[1:])
    return p[keep]


def convex_hull_2d(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull vertices of 2D points.

    Parameters
    ----------
    points : numpy.ndarray
        ``(n, 2)`` points.

    Returns
    -------
    numpy.ndarray
        ``(h, 2)`` hull vertices. Degenerate sets: up to two distinct points are returned as
        they are; collinear points give their two extremes.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape[0] <= 3:
        pts = unique_rows(pts)
    if pts.shape[0] <= 2:
        return pts
    try:
        return pts[ConvexHull(pts).vertices]
    except QhullError:  # collinear: keep the two extremes
        d = pts - pts[0]
        axis = d[np.argmax(np.einsum("ij,ij->i", d, d))]
        t = d @ axis
        return pts[[int(np.argmin(t)), int(np.argmax(t))]]


def antipodal_pairs(hull: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Antipodal vertex pairs of a convex polygon (rotating calipers, vectorised).

    For every edge ``(i, i + 1)`` the vertex farthest from its line is the one whose normal
    cone holds the edge's inward normal: with the edge directions' angles increasing around a
    counter-clockwise polygon, it is found by a binary search for the edge angle plus pi. Both
    ends of the edge are paired with that vertex and its two neighbours (covering parallel edges
    and rounding), so every antipodal pair is among the returned ones; the others are real vertex
    pairs too, so maxima over the set are exact.

    Parameters
    ----------
    hull : numpy.ndarray
        ``(h, 2)`` counter-clockwise convex polygon vertices, ``h >= 3``.

    Returns
    -------
    i, j : numpy.ndarray of int
        Vertex indices of each pair.
    d2 : numpy.ndarray
        Squared distances.
    """
    hull = np.asarray(hull, dtype=np.float64)
    n = hull.shape[0]
    edge = np.roll(hull, -1, axis=0) - hull
    ang = np.arctan2(edge[:, 1], edge[:, 0])
    turn = np.mod(ang - ang[0], 2.0 * np.pi)  # non-decreasing around a convex polygon
    turn[0] = 0.0
    turn = np.maximum.accumulate(turn)  # rounding on nearly straight vertices
    opposite = np.mod(turn + np.pi, 2.0 * np.pi)
    j = np.searchsorted(turn, opposite, side="left") % n
    i = np.arange(n)
    ii = np.repeat(np.stack([i, (i + 1) % n], axis=1), 3, axis=1).ravel()
    jj = np.tile((j[:, None] + np.array([-1, 0, 1])[None, :]) % n, (1, 2)).ravel()
    d = hull[ii] - hull[jj]
    return ii, jj, np.einsum("ij,ij->i", d, d)


def diametral_pairs(hull: np.ndarray, rel_tol: float = 1e-9) -> list[tuple[np.ndarray, np.ndarray]]:
    """Vertex pairs of a convex polygon at its diameter (exact ties within ``rel_tol``).

    Parameters
    ----------
    hull : numpy.ndarray
        ``(h, 2)`` counter-clockwise convex polygon vertices (:func:`convex_hull_2d`).
    rel_tol : float
        Pairs whose squared length is within ``2 * rel_tol`` of the largest tie with it.

    Returns
    -------
    list of (numpy.ndarray, numpy.ndarray)
        Each pair once, lower vertex index first.
    """
    n = hull.shape[0]
    if n == 1:
        return [(hull[0], hull[0])]
    if n == 2:
        return [(hull[0], hull[1])]
    ii, jj, d2 = antipodal_pairs(hull)
    top = d2 >= d2.max() * (1.0 - 2.0 * rel_tol)
    seen = set()
    out = []
    for a, b in zip(ii[top].tolist(), jj[top].tolist(), strict=True):
        key = (min(a, b), max(a, b))
        if key not in seen:
            seen.add(key)
            out.append((hull[key[0]], hull[key[1]]))
    return out


def far_candidates(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Points that may end a pair longer than a lower bound of the set's diameter (any dimension).

    A lower bound ``L`` comes from a few farthest-point iterations; with ``c`` the middle of that
    pair and ``R`` the largest distance from ``c``, only a point farther than ``L - R`` from
    ``c`` can belong to a pair at least as long (``|p - q| <= |p - c| + |q - c|``). For an
    elongated shape this keeps only the points near its two ends.

    Parameters
    ----------
    points : numpy.ndarray
        ``(n, d)`` points, ``n >= 1``.

    Returns
    -------
    keep : numpy.ndarray of bool
        The candidates (the bound's own pair among them).
    c : numpy.ndarray
        The centre ``c``.
    lower_sq : float
        ``L ** 2``.
    """
    pts = np.asarray(points, dtype=np.float64)
    # squared distances to one point as |p|^2 - 2 p.q + |q|^2 (one matrix-vector product per
    # iteration), on coordinates centred near the set so that the expansion stays accurate
    rel = pts - pts[0]
    sq = np.einsum("ij,ij->i", rel, rel)
    i = 0
    best = 0.0
    pair = (0, 0)
    for _ in range(4):
        d2 = sq - 2.0 * (rel @ rel[i]) + sq[i]
        j = int(np.argmax(d2))
        dj = float(np.sum((pts[j] - pts[i]) ** 2))  # exact, for the bound
        if dj <= best:
            break
        best, pair, i = dj, (i, j), j
    c = 0.5 * (pts[pair[0]] + pts[pair[1]])
    d = pts - c
    r = np.sqrt(np.einsum("ij,ij->i", d, d))
    return r + r.max() >= np.sqrt(best) * (1.0 - 1e-9) - 1e-9, c, best


#: :func:`farthest_pairs` compares all candidate pairs up to this many candidates, and takes
#: their convex hull first above it.
_PAIRS_BRUTE_MAX = 160


def farthest_pairs(points: np.ndarray, rel_tol: float = 1e-9
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The pairs of 2D points at the set's diameter (exact ties within ``rel_tol``).

    Points that cannot end a diameter are dropped by :func:`far_candidates`; the remaining pairs
    are compared directly, or through their convex hull (:func:`diametral_pairs`) when many
    remain (round shapes). Each pair is ``(p, q)`` with ``p`` after ``q`` in lexicographic
    ``(y, x)`` order; pairs are sorted by ``q``, then ``p``.

    Parameters
    ----------
    points : numpy.ndarray
        ``(n, 2)`` points, ``n >= 1`` (one point: the pair of it with itself).
    rel_tol : float
        Pairs whose squared length is within ``2 * rel_tol`` of the largest tie with it.

    Returns
    -------
    list of (numpy.ndarray, numpy.ndarray)
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape[0] < 2:
        return [(pts[0], pts[0])]
    # duplicates do not change which points can end a diameter: remove them among the few
    # candidates only (sorted, as the pairs' order below relies on)
    cand = unique_rows(pts[far_candidates(pts)[0]])
    if cand.shape[0] < 2:
        return [(cand[0], cand[0])]
    if cand.shape[0] > _PAIRS_BRUTE_MAX:
        hull = convex_hull_2d(cand)
        pairs = diametral_pairs(hull, rel_tol)
        key = lambda pq: (tuple(pq[1]), tuple(pq[0]))  # noqa: E731
        return sorted(((p, q) if tuple(p) >= tuple(q) else (q, p) for p, q in pairs), key=key)
    d = cand[:, None, :] - cand[None, :, :]
    d2 = np.einsum("ijk,ijk->ij", d, d)
    iu, ju = np.nonzero(np.triu(d2 >= d2.max() * (1.0 - 2.0 * rel_tol), 1))
    return [(cand[b], cand[a]) for a, b in zip(iu.tolist(), ju.tolist(), strict=True)]


def hull_diameter(hull: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Exact diameter of a convex polygon by rotating calipers.

    Parameters
    ----------
    hull : numpy.ndarray
        ``(h, 2)`` counter-clockwise convex polygon vertices.

    Returns
    -------
    p, q : numpy.ndarray
        The two vertices farthest apart.
    d : float
        Their distance.
    """
    n = hull.shape[0]
    if n == 1:
        return hull[0], hull[0], 0.0
    if n == 2:
        return hull[0], hull[1], float(np.hypot(*(hull[1] - hull[0])))
    ii, jj, d2 = antipodal_pairs(hull)
    k = int(np.argmax(d2))
    return hull[ii[k]], hull[jj[k]], float(np.sqrt(d2[k]))


def chords_at(
    a: np.ndarray, b: np.ndarray, u: np.ndarray, v: np.ndarray, ts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inside chords along ``v`` on the lines ``{x : x.u = t}`` for ``t`` in ``ts``.

    Inside follows the even-odd rule over all edges, so holes and concavities split chords.

    Parameters
    ----------
    a, b : numpy.ndarray
        ``(e, 2)`` start and end points of the polygons' edges.
    u, v : numpy.ndarray
        Unit vectors: ``u`` across the lines, ``v`` along them.
    ts : numpy.ndarray
        The lines' positions along ``u``.

    Returns
    -------
    line, start, end : numpy.ndarray
        For every inside interval found, the index of its line in ``ts`` and its start and end
        parameters along ``v``.
    """
    au, bu = a @ u, b @ u
    av, bv = a @ v, b @ v
    lo = np.minimum(au, bu)
    hi = np.maximum(au, bu)
    # half-open crossing rule (lo <= t < hi): every line crosses a closed polygon an even
    # number of times, so consecutive crossings pair up into inside intervals (even-odd rule)
    # the lines crossing each edge are a run of the sorted lines: enumerate only those
    by_t = np.argsort(ts, kind="stable")
    ts_sorted = ts[by_t]
    first = np.searchsorted(ts_sorted, lo, side="left")
    count = np.searchsorted(ts_sorted, hi, side="left") - first  # lo <= hi: never negative
    ei = np.repeat(np.arange(lo.size), count)
    run_start = np.repeat(np.cumsum(count) - count, count)
    li = by_t[np.repeat(first, count) + np.arange(ei.size) - run_start]
    if li.size == 0:
        return li, np.empty(0), np.empty(0)
    frac = (ts[li] - au[ei]) / (bu[ei] - au[ei])
    s = av[ei] + frac * (bv[ei] - av[ei])
    order = np.lexsort((s, li))
    li, s = li[order], s[order]
    return li[0::2], s[0::2], s[1::2]
