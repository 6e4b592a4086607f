"""Result types of a measurement: :class:`AxisMeasurement` and :class:`ComponentAxes`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Point3 = tuple[float, float, float]
Segment3 = tuple[Point3, Point3]


def _seg(s: Segment3 | None) -> list[list[float]] | None:
    return None if s is None else [[float(c) for c in p] for p in s]


def _unseg(v: Any) -> Segment3 | None:
    if v is None:
        return None
    a, b = v
    return (tuple(float(c) for c in a), tuple(float(c) for c in b))  # type: ignore[return-value]


@dataclass(frozen=True)
class ComponentAxes:
    """Long and short axis of one connected part of the lesion on the measured slice.

    Attributes
    ----------
    long_axis_mm, short_axis_mm : float
        Edge-to-edge lengths in mm.
    long_axis_endpoints_voxel, short_axis_endpoints_voxel : tuple
        Two ``(z, y, x)`` fractional voxel indices (full-volume grid).
    long_axis_endpoints_lps, short_axis_endpoints_lps : tuple
        The same points in patient coordinates, LPS ``(x, y, z)`` mm.
    area_mm2 : float
        In-plane area of the part (pixel count times pixel area).
    """

    long_axis_mm: float
    short_axis_mm: float
    long_axis_endpoints_voxel: Segment3
    long_axis_endpoints_lps: Segment3
    short_axis_endpoints_voxel: Segment3 | None
    short_axis_endpoints_lps: Segment3 | None
    area_mm2: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (lists, not tuples)."""
        return {
            "long_axis_mm": self.long_axis_mm,
            "short_axis_mm": self.short_axis_mm,
            "long_axis_endpoints_voxel_zyx": _seg(self.long_axis_endpoints_voxel),
            "long_axis_endpoints_lps": _seg(self.long_axis_endpoints_lps),
            "short_axis_endpoints_voxel_zyx": _seg(self.short_axis_endpoints_voxel),
            "short_axis_endpoints_lps": _seg(self.short_axis_endpoints_lps),
            "area_mm2": self.area_mm2,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ComponentAxes:
        """Inverse of :meth:`to_dict`."""
        return cls(
            long_axis_mm=float(d["long_axis_mm"]),
            short_axis_mm=float(d["short_axis_mm"]),
            long_axis_endpoints_voxel=_unseg(d["long_axis_endpoints_voxel_zyx"]),  # type: ignore[arg-type]
            long_axis_endpoints_lps=_unseg(d["long_axis_endpoints_lps"]),  # type: ignore[arg-type]
            short_axis_endpoints_voxel=_unseg(d.get("short_axis_endpoints_voxel_zyx")),
            short_axis_endpoints_lps=_unseg(d.get("short_axis_endpoints_lps")),
            area_mm2=float(d["area_mm2"]),
        )


@dataclass(frozen=True)
class AxisMeasurement:
    """RECIST axes of one lesion, from a mask or from caliper lines; stored alike.

    Attributes
    ----------
    long_axis_mm : float
        Longest in-plane diameter (edge to edge, as a caliper on the image) in mm.
    short_axis_mm : float or None
        Longest chord inside the lesion perpendicular to the long axis on the same slice, mm.
        ``None`` for a caliper measurement without a short-axis line.
    slice_index : int
        Index ``z`` (full-volume grid) of the slice both axes lie on.
    long_axis_endpoints_voxel, short_axis_endpoints_voxel : tuple
        Two ``(z, y, x)`` fractional voxel indices each.
    long_axis_endpoints_lps, short_axis_endpoints_lps : tuple
        The same points in LPS ``(x, y, z)`` mm.
    volume_ml : float or None
        Lesion volume (mL) from the voxel count with the real slice gaps; ``None`` for lines.
    max_3d_diameter_mm : float or None
        Largest distance (mm) between two points of the lesion's boundary in 3D, in patient
        coordinates; ``None`` for lines.
    n_components : int
        Connected parts (8-connected) of the lesion on the measured slice; 1 for lines.
    components : tuple of ComponentAxes
        Axes of each part on the measured slice, largest long axis first (split lesions).
    n_components_3d : int
        Connected parts (26-connected) of the whole 3D mask; 1 for lines.
    method : {'mask', 'line'}
        Provenance: measured automatically from a mask, or from user-drawn caliper lines.
    node : bool
        True when the slice was chosen for the largest short axis (lymph nodes).
    spacing_mm : tuple of float
        ``(dz, dy, dx)`` of the grid measured on.
    """

    long_axis_mm: float
    short_axis_mm: float | None
    slice_index: int
    long_axis_endpoints_voxel: Segment3
    long_axis_endpoints_lps: Segment3
    short_axis_endpoints_voxel: Segment3 | None
    short_axis_endpoints_lps: Segment3 | None
    volume_ml: float | None
    max_3d_diameter_mm: float | None
    n_components: int
    components: tuple[ComponentAxes, ...] = ()
    n_components_3d: int = 1
    method: Literal["mask", "line"] = "mask"
    node: bool = False
    spacing_mm: tuple[float, float, float] = field(default=(0.0, 0.0, 0.0))

    @property
    def recist_diameter_mm(self) -> float | None:
        """The diameter RECIST sums: the short axis for nodes, the long axis otherwise."""
        return self.short_axis_mm if self.node else self.long_axis_mm

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary; the keys of the ``recist measure --json`` output."""
        return {
            "long_axis_mm": self.long_axis_mm,
            "short_axis_mm": self.short_axis_mm,
            "slice_index": self.slice_index,
            "long_axis_endpoints_lps": _seg(self.long_axis_endpoints_lps),
            "short_axis_endpoints_lps": _seg(self.short_axis_endpoints_lps),
            "long_axis_endpoints_voxel_zyx": _seg(self.long_axis_endpoints_voxel),
            "short_axis_endpoints_voxel_zyx": _seg(self.short_axis_endpoints_voxel),
            "volume_ml": self.volume_ml,
            "max_3d_diameter_mm": self.max_3d_diameter_mm,
            "n_components": self.n_components,
            "n_components_3d": self.n_components_3d,
            "components": [c.to_dict() for c in self.components],
            "method": self.method,
            "node": self.node,
            "spacing_mm_zyx": list(self.spacing_mm),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AxisMeasurement:
        """Inverse of :meth:`to_dict` (e.g. a measurement read back from storage)."""
        opt = lambda k: None if d.get(k) is None else float(d[k])  # noqa: E731
        return cls(
            long_axis_mm=float(d["long_axis_mm"]),
            short_axis_mm=opt("short_axis_mm"),
            slice_index=int(d["slice_index"]),
            long_axis_endpoints_voxel=_unseg(d["long_axis_endpoints_voxel_zyx"]),  # type: ignore[arg-type]
            long_axis_endpoints_lps=_unseg(d["long_axis_endpoints_lps"]),  # type: ignore[arg-type]
            short_axis_endpoints_voxel=_unseg(d.get("short_axis_endpoints_voxel_zyx")),
            short_axis_endpoints_lps=_unseg(d.get("short_axis_endpoints_lps")),
            volume_ml=opt("volume_ml"),
            max_3d_diameter_mm=opt("max_3d_diameter_mm"),
            n_components=int(d["n_components"]),
            components=tuple(ComponentAxes.from_dict(c) for c in d.get("components", [])),
            n_components_3d=int(d.get("n_components_3d", 1)),
            method=d.get("method", "mask"),
            node=bool(d.get("node", False)),
            spacing_mm=tuple(float(x) for x in d.get("spacing_mm_zyx", (0.0, 0.0, 0.0))),  # type: ignore[arg-type]
        )
