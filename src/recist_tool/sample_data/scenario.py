"""The synthetic trial's design: subjects, visits, acquisitions and lesions with their sizes.

Everything here is plain data. Sizes are *nominal* diameters of the analytic shapes; the ground
truth written by :mod:`recist_tool.sample_data.generate` is measured from the shapes on the slices
each visit actually samples (it differs from the nominal values by a fraction of a millimetre).

Three archetypes exist; subject ``i`` (1-based) uses archetype ``(i - 1) % 3``:

* ``A`` — partial response: lesions shrink, a lung nodule cavitates (anlotinib), a small liver
  metastasis disappears, nodes shrink below 10 mm short axis.
* ``B`` — stable disease, then progression through a new liver metastasis at week 12.
* ``C`` — stable disease, then progression by growth of the target sum (+20 % and +5 mm).

The large-lesion trial (``build_subjects(large_lesions=True)``) keeps these responses and adds
the large targets of the trial this tool serves: an ~80 mm lobulated central lung primary
abutting the mediastinum (A's T05, cavitating under the TKI), a conglomerate of merged
subcarinal and hilar nodes (B's T03) and a ~50 mm necrotic, rim-enhancing liver metastasis
(C's T04). Lobulated lesions are unions of ellipsoids (:class:`Lobe`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import numpy as np

__all__ = [
    "VISITS",
    "Acquisition",
    "Lobe",
    "LesionPlan",
    "SubjectPlan",
    "LESION_HU",
    "NECROSIS_HU",
    "build_subjects",
]

#: Visit codes in schedule order with their nominal day from baseline.
VISITS: tuple[tuple[str, int], ...] = (("BL", 0), ("W06", 42), ("W12", 84))

#: Lesion densities (HU) without / with contrast.
LESION_HU: dict[str, tuple[float, float]] = {
    "lung_nodule": (30.0, 45.0),
    "liver_met": (25.0, 55.0),
    "liver_met_rim": (30.0, 75.0),
    "node": (35.0, 60.0),
}
#: Density (HU) without / with contrast of the necrotic core of a metastasis.
NECROSIS_HU: tuple[float, float] = (20.0, 30.0)


@dataclass(frozen=True)
class Acquisition:
    """How one visit's CT series is reconstructed and stored.

    ``pixel_signed`` selects signed int16 with intercept 0; otherwise unsigned with intercept
    −1024. ``shuffle_instance_numbers`` numbers the slices in an order unrelated to their position;
    ``no_extension`` writes file names without ``.dcm``; ``localizer`` adds a scout image (a
    second series) into the same folder.
    """

    pixel_spacing: float
    slice_thickness: float
    kernel: str
    manufacturer: str
    model: str
    kvp: float
    matrix: int = 384
    pixel_signed: bool = False
    noise_hu: float = 12.0
    psf_sigma_mm: float = 0.5
    shuffle_instance_numbers: bool = False
    no_extension: bool = False
    localizer: bool = False


@dataclass(frozen=True)
class Lobe:
    """A further ellipsoid of a lobulated lesion (or a node of a conglomerate).

    Given in the frame of the lesion's main ellipsoid and relative to its semi-axes, so that it
    follows the lesion's size at every visit: centre at ``offset * semi`` from the main centre,
    semi-axes ``semi * semi_main``, turned by ``yaw_deg`` about the main ellipsoid's own ``z``.
    """

    offset: tuple[float, float, float]
    semi: tuple[float, float, float]
    yaw_deg: float = 0.0


@dataclass(frozen=True)
class LesionPlan:
    """A lesion of the design.

    ``sizes`` maps a visit code to nominal diameters ``(long, short, cranio-caudal)`` in mm, or to
    ``None`` when the lesion is absent (disappeared). Visits missing from ``sizes`` are before the
    lesion existed (a new lesion). ``center`` is in the body frame (mm).

    A lobulated lesion (``lobes``) is the union of its main ellipsoid (``sizes``, ``center``) and
    the lobes; its measured axes are those of the union. ``necrotic_core`` is the size, relative
    to the main ellipsoid, of a concentric core of :data:`NECROSIS_HU` (a necrotic metastasis,
    rim-enhancing with contrast). A lesion with ``shrinks_towards`` (a body-frame point, e.g.
    where it meets the mediastinum) changes size about that point rather than about its centre:
    at each visit its centre is ``p + (center - p) * long / long_first``, the ratio of the
    visit's nominal long diameter to that of its first visit.
    """

    lesion_id: str
    category: str
    organ: str
    site: str
    nodal: bool
    tissue: str
    center: tuple[float, float, float]
    sizes: dict[str, tuple[float, float, float] | None]
    yaw_deg: float = 0.0
    tilt_deg: float = 0.0
    cavitating_from: str | None = None
    lobes: tuple[Lobe, ...] = ()
    necrotic_core: float | None = None
    shrinks_towards: tuple[float, float, float] | None = None

    def center_at(self, visit: str) -> tuple[float, float, float]:
        """The centre (body frame, mm) at ``visit`` (``center`` unless ``shrinks_towards``)."""
        size = self.sizes.get(visit)
        if self.shrinks_towards is None or size is None:
            return self.center
        first = next(s for s in self.sizes.values() if s is not None)
        f = size[0] / first[0]
        x, y, z = (float(p + (c - p) * f)
                   for p, c in zip(self.shrinks_towards, self.center, strict=True))
        return x, y, z


@dataclass(frozen=True)
class SubjectPlan:
    """A subject: identifiers, the visit dates, acquisitions and lesions."""

    subject: str
    patient_name: str
    archetype: str
    contrast: bool
    table_z: float
    dates: dict[str, date]
    acquisitions: dict[str, Acquisition]
    lesions: tuple[LesionPlan, ...]
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict)


# Large lesions of the large-lesion trial (``build_subjects(large_lesions=True)``).
#: A central lung primary in the right hilum, lobulated, abutting the mediastinal fat; it
#: shrinks and cavitates under the TKI (archetype A's T05).
_CENTRAL_PRIMARY = LesionPlan(
    "T05", "target", "lung", "right hilum, central primary abutting the mediastinum", False,
    "lung_nodule", (-56.0, -2.0, -3.0),
    {"BL": (72.0, 56.0, 53.0), "W06": (49.0, 38.0, 36.0), "W12": (42.0, 32.5, 31.0)},
    yaw_deg=80.0, tilt_deg=8.0, cavitating_from="W06", shrinks_towards=(-24.0, -2.0, 0.0),
    lobes=(Lobe((0.55, 0.45, 0.15), (0.55, 0.5, 0.55), 30.0),
           Lobe((-0.6, -0.3, -0.1), (0.5, 0.55, 0.6), -20.0),
           Lobe((0.1, -0.75, 0.3), (0.45, 0.4, 0.5), 0.0)))
#: Merged subcarinal and right hilar nodes, measured as one node by its short axis
#: (archetype B's T03 instead of a single subcarinal node).
_NODAL_CONGLOMERATE = LesionPlan(
    "T03", "target", "lymph node", "subcarinal and right hilar conglomerate (stations 7, 10R)",
    True, "node", (-3.0, 6.0, -8.0),
    {"BL": (24.0, 20.0, 24.0), "W06": (23.0, 19.0, 23.0), "W12": (25.5, 21.0, 25.5)},
    lobes=(Lobe((-1.583, -0.3, -0.25), (0.75, 0.8, 0.75), 30.0),
           Lobe((1.167, 0.3, -0.75), (0.667, 0.7, 0.583), -20.0)))
#: A large necrotic liver metastasis, hypodense, rim-enhancing with contrast (archetype C's T04).
_NECROTIC_LIVER_MET = LesionPlan(
    "T04", "target", "liver", "liver segment VI, necrotic, rim-enhancing", False,
    "liver_met_rim", (-85.0, -15.0, -92.0),
    {"BL": (50.0, 42.0, 44.0), "W06": (48.0, 40.0, 42.0), "W12": (58.0, 49.0, 51.0)},
    yaw_deg=-30.0, tilt_deg=6.0, necrotic_core=0.72)


def _archetype_a(large: bool = False) -> tuple[tuple[LesionPlan, ...], str]:
    lesions: tuple[LesionPlan, ...] = (
        LesionPlan("T01", "target", "lung", "right upper lobe", False, "lung_nodule",
                   (-78.0, -5.0, 45.0),
                   {"BL": (28.0, 22.0, 24.0), "W06": (19.0, 15.0, 17.0), "W12": (16.0, 13.0, 14.0)},
                   yaw_deg=30.0, tilt_deg=15.0, cavitating_from="W06"),
        LesionPlan("T02", "target", "liver", "liver segment VI", False, "liver_met",
                   (-58.0, 10.0, -105.0),
                   {"BL": (40.0, 31.0, 34.0), "W06": (26.0, 20.0, 22.0), "W12": (19.0, 15.0, 16.0)},
                   yaw_deg=-20.0, tilt_deg=10.0),
        LesionPlan("T03", "target", "lymph node", "subcarinal (station 7)", True, "node",
                   (0.0, 14.0, -12.0),
                   {"BL": (25.0, 18.0, 28.0), "W06": (17.0, 12.0, 20.0), "W12": (13.0, 9.0, 15.0)},
                   yaw_deg=15.0),
        LesionPlan("T04", "target", "liver", "liver segment IVb", False, "liver_met",
                   (-22.0, -32.0, -88.0),
                   {"BL": (15.0, 13.0, 13.0), "W06": (8.0, 7.0, 7.0), "W12": None}),
        LesionPlan("NT01", "non-target", "lymph node", "right lower paratracheal (station 4R)",
                   True, "node", (-20.0, -8.0, 35.0),
                   {"BL": (16.0, 12.0, 18.0), "W06": (14.0, 10.5, 16.0), "W12": (11.0, 8.0, 12.0)},
                   yaw_deg=-35.0),
    )
    if large:
        lesions += (_CENTRAL_PRIMARY,)
        return lesions, ("partial response: shrinkage, cavitation (the central primary too), a "
                         "metastasis disappears")
    return lesions, "partial response: shrinkage, cavitation, a metastasis disappears"


def _archetype_b(large: bool = False) -> tuple[tuple[LesionPlan, ...], str]:
    lesions: tuple[LesionPlan, ...] = (
        LesionPlan("T01", "target", "liver", "liver segment VII", False, "liver_met",
                   (-70.0, 22.0, -115.0),
                   {"BL": (32.0, 25.0, 27.0), "W06": (33.0, 26.0, 28.0), "W12": (36.0, 28.0, 30.0)},
                   yaw_deg=40.0, tilt_deg=-12.0),
        LesionPlan("T02", "target", "lung", "left lower lobe", False, "lung_nodule",
                   (80.0, 25.0, -40.0),
                   {"BL": (22.0, 17.0, 19.0), "W06": (20.0, 16.0, 17.0), "W12": (22.0, 17.0, 19.0)},
                   yaw_deg=-25.0, tilt_deg=20.0),
        LesionPlan("T03", "target", "lymph node", "subcarinal (station 7)", True, "node",
                   (0.0, 14.0, -12.0),
                   {"BL": (22.0, 16.0, 24.0), "W06": (22.0, 16.0, 24.0), "W12": (23.0, 17.0, 25.0)},
                   yaw_deg=-10.0),
        LesionPlan("NT01", "non-target", "lymph node", "right lower paratracheal (station 4R)",
                   True, "node", (-20.0, -8.0, 35.0),
                   {"BL": (16.0, 12.0, 18.0), "W06": (16.0, 12.0, 18.0), "W12": (17.0, 13.0, 19.0)},
                   yaw_deg=25.0),
        LesionPlan("NL01", "new", "liver", "liver segment V", False, "liver_met",
                   (-30.0, -22.0, -112.0), {"W12": (14.0, 12.0, 12.0)}, yaw_deg=10.0),
    )
    if large:
        lesions = tuple(_NODAL_CONGLOMERATE if les.lesion_id == "T03" else les
                        for les in lesions)
    return lesions, "stable disease, then progression by a new liver metastasis"


def _archetype_c(large: bool = False) -> tuple[tuple[LesionPlan, ...], str]:
    lesions: tuple[LesionPlan, ...] = (
        LesionPlan("T01", "target", "lung", "right lower lobe", False, "lung_nodule",
                   (-85.0, 15.0, -20.0),
                   {"BL": (25.0, 20.0, 22.0), "W06": (24.0, 19.0, 21.0), "W12": (33.0, 26.0, 29.0)},
                   yaw_deg=60.0, tilt_deg=10.0),
        LesionPlan("T02", "target", "liver", "liver segment VIII", False, "liver_met",
                   (-40.0, 25.0, -100.0),
                   {"BL": (30.0, 24.0, 26.0), "W06": (28.0, 22.0, 24.0), "W12": (37.0, 29.0, 31.0)},
                   yaw_deg=-50.0),
        LesionPlan("T03", "target", "lymph node", "subcarinal (station 7)", True, "node",
                   (0.0, 14.0, -12.0),
                   {"BL": (23.0, 16.0, 24.0), "W06": (22.0, 15.0, 23.0), "W12": (25.0, 17.5, 26.0)},
                   yaw_deg=40.0),
        LesionPlan("NT01", "non-target", "lung", "left upper lobe", False, "lung_nodule",
                   (70.0, -10.0, 40.0),
                   {"BL": (8.0, 7.0, 7.0), "W06": (8.0, 7.0, 7.0), "W12": (9.0, 8.0, 8.0)}),
    )
    if large:
        lesions = lesions[:3] + (_NECROTIC_LIVER_MET,) + lesions[3:]
    return lesions, "stable disease, then progression by growth of the target lesions"


_ARCHETYPES = {"A": _archetype_a, "B": _archetype_b, "C": _archetype_c}

_ACQ: dict[str, dict[str, Acquisition]] = {
    "A": {
        "BL": Acquisition(0.8203125, 2.5, "STANDARD", "GE MEDICAL SYSTEMS", "Revolution CT", 120.0,
                          localizer=True),
        "W06": Acquisition(0.859375, 2.5, "STANDARD", "GE MEDICAL SYSTEMS", "Revolution CT", 120.0,
                           shuffle_instance_numbers=True),
        "W12": Acquisition(0.8203125, 1.25, "STANDARD", "GE MEDICAL SYSTEMS", "Revolution CT",
                           100.0, noise_hu=15.0),
    },
    "B": {
        "BL": Acquisition(0.8984375, 3.0, "FC08", "CANON_MEC", "Aquilion ONE", 120.0,
                          pixel_signed=True, psf_sigma_mm=0.6),
        "W06": Acquisition(0.859375, 5.0, "FC08", "CANON_MEC", "Aquilion ONE", 120.0,
                           pixel_signed=True, noise_hu=10.0, psf_sigma_mm=0.6),
        "W12": Acquisition(0.8984375, 3.0, "FC08", "CANON_MEC", "Aquilion ONE", 120.0,
                           pixel_signed=True, no_extension=True, psf_sigma_mm=0.6),
    },
    "C": {
        "BL": Acquisition(0.8203125, 2.0, "Br40", "SIEMENS", "SOMATOM Force", 110.0,
                          noise_hu=13.0, psf_sigma_mm=0.45),
        "W06": Acquisition(0.859375, 2.0, "Br40", "SIEMENS", "SOMATOM Force", 110.0,
                           noise_hu=13.0, psf_sigma_mm=0.45),
        "W12": Acquisition(0.8203125, 3.0, "Br40", "SIEMENS", "SOMATOM Force", 110.0,
                           noise_hu=12.0, psf_sigma_mm=0.45),
    },
}

#: The full-size profile (``build_subjects(full_size=True)``): pixel spacing and slice thickness
#: (mm) per archetype and visit on a 512 × 512 matrix; every other acquisition feature (vendor,
#: kernel, storage, header quirks, noise) as in :data:`_ACQ`.
_FULL_SIZE: dict[str, dict[str, tuple[float, float]]] = {
    "A": {"BL": (0.703125, 1.0), "W06": (0.78125, 1.25), "W12": (0.7421875, 1.0)},
    "B": {"BL": (0.78125, 1.25), "W06": (0.7421875, 1.25), "W12": (0.78125, 1.0)},
    "C": {"BL": (0.7421875, 1.0), "W06": (0.703125, 1.0), "W12": (0.78125, 1.25)},
}
FULL_SIZE_MATRIX = 512


def full_size_acquisitions(arch: str) -> dict[str, Acquisition]:
    """The full-size profile's acquisitions of archetype ``arch`` (512², 0.70–0.78 mm pixels,
    1–1.25 mm slices), derived from the small trial's."""
    return {visit: replace(acq, matrix=FULL_SIZE_MATRIX, pixel_spacing=_FULL_SIZE[arch][visit][0],
                           slice_thickness=_FULL_SIZE[arch][visit][1])
            for visit, acq in _ACQ[arch].items()}


_CONTRAST = {"A": True, "B": False, "C": True}
_TABLE_Z = {"A": -150.0, "B": -612.5, "C": -95.0}
_FIRST_BASELINE = date(2025, 3, 3)
#: Day offsets (W06, W12) from baseline per archetype: realistic visit windows around 42/84.
_DAY_OFFSETS = {"A": (43, 85), "B": (41, 86), "C": (42, 84)}


def build_subjects(n_subjects: int = 3, rng: np.random.Generator | None = None,
                   large_lesions: bool = False, full_size: bool = False) -> list[SubjectPlan]:
    """The trial's subjects, ``SYN-001`` … in order.

    Parameters
    ----------
    n_subjects : int
        How many subjects; archetypes A, B, C repeat in that order.
    rng : numpy.random.Generator, optional
        Moves lesions of repeated archetypes (subject 4 and later) by a few millimetres so that
        copies are not identical; the first three subjects are fixed by the design.
    large_lesions : bool
        The large-lesion trial: A gains a lobulated ~80 mm central lung primary abutting the
        mediastinum (T05, cavitating), B's subcarinal node becomes a conglomerate of merged
        nodes (T03), C gains a ~50 mm necrotic, rim-enhancing liver metastasis (T04).
    full_size : bool
        The full-size profile's acquisitions (:func:`full_size_acquisitions`) instead of the
        small trial's; the design (lesions, dates) is unchanged.

    Returns
    -------
    list of SubjectPlan
    """
    out = []
    for i in range(1, n_subjects + 1):
        arch = "ABC"[(i - 1) % 3]
        lesions, desc = _ARCHETYPES[arch](large_lesions)
        if i > 3 and rng is not None:
            jitter = rng.uniform(-3.0, 3.0, size=(len(lesions), 3))
            lesions = tuple(
                LesionPlan(**{**les.__dict__, "center": tuple(
                    float(c + j) for c, j in zip(les.center, jit, strict=True))})
                for les, jit in zip(lesions, jitter, strict=True)
            )
        baseline = _FIRST_BASELINE + timedelta(days=17 * (i - 1))
        d6, d12 = _DAY_OFFSETS[arch]
        dates = {"BL": baseline, "W06": baseline + timedelta(days=d6),
                 "W12": baseline + timedelta(days=d12)}
        out.append(SubjectPlan(
            subject=f"SYN-{i:03d}",
            patient_name=f"SYNTHETIC^PHANTOM{i:03d}",
            archetype=arch,
            contrast=_CONTRAST[arch],
            table_z=_TABLE_Z[arch],
            dates=dates,
            acquisitions=full_size_acquisitions(arch) if full_size else _ACQ[arch],
            lesions=lesions,
            description=desc,
        ))
    return out
