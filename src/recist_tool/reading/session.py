"""The reading session: one reader's read of a subject's timepoints (the workflow behind the napari
reading workstation).

A :class:`ReadingSession` is one reader's read of one subject, over the same library functions the
command line uses: the loader (:func:`recist_tool.io.load_volume`), a segmenter
(:mod:`recist_tool.segment`), :mod:`recist_tool.measure`, the baseline rules of
:mod:`recist_tool.recist.baseline`, lesion tracking (:mod:`recist_tool.track`) and the trial database
(:class:`recist_tool.store.TrialStore`). It holds no GUI code; the napari widget only calls it.

Every confirmation is written to the database at once (closing the viewer loses nothing that was
confirmed). A segmentation or an edit that is not confirmed yet is a :class:`Finding`, a plain value
the caller keeps.

Typical use::

    s = ReadingSession(TrialStore("recist.db"), "dr_a", password)
    s.open_subject("SYN-001")
    vol = s.open_visit("BL")
    f = s.segment_at("BL", lps=(x, y, z))          # raises NoLesionError off a lesion
    s.add_lesion(f, "target", organ="lung")        # baseline rules checked, stored, audited
    s.open_visit("W06")
    for p in s.propose_followup("W06"):            # tracked from the stored baseline
        s.accept_proposal(p)
    table = s.timepoint_table()                    # lesions x visits, SOD, % change, responses
    s.sign("W06", password)
"""

from __future__ import annotations

import datetime as _dt
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from recist_tool.align import Alignment, align_visits, lesion_position
from recist_tool.errors import InputError, MeasurementError, RuleViolation, UsageError
from recist_tool.io.masks import mask_folder, save_mask_file
from recist_tool.reading.findings import (
    CATEGORIES,
    LESION_ID_PREFIX,
    MIN_LINE_MM,
    OVERLAP_FRACTION,
    STATES,
    AddedLesion,
    Finding,
    shared_fraction,
    voxel_in_mask,
)
from recist_tool.reading.proposals import Proposal
from recist_tool.reading.tables import ReadingTable, reading_table
from recist_tool.recist.model import to_stored_mm
from recist_tool.store.values import axis_endpoints, measurement_values
from recist_tool.volume import Volume

if TYPE_CHECKING:
    from recist_tool.segment import Segmenter
    from recist_tool.store import TrialStore

__all__ = ["MANIFEST_NAMES", "ReadingSession", "export_formats"]

#: Batch manifests looked for beside a SQLite database file, in this order, for where each
#: visit's series is (:func:`recist_tool.batch.manifest.read_manifest` reads both forms).
MANIFEST_NAMES = ("manifest.csv", "manifest.toml")


def export_formats() -> dict[str, str]:
    """Export formats whose exporter this install has (name → ``module:function``); empty when
    there is no export framework."""
    try:
        from recist_tool.export import FORMATS  # type: ignore[import-not-found]
    except ImportError:
        return {}
    try:
        from recist_tool.export import available_formats  # type: ignore[import-not-found]
    except ImportError:
        return dict(FORMATS)
    have = set(available_formats())
    return {k: v for k, v in FORMATS.items() if k in have}


# --- the session -------------------------------------------------------------------------------------

class ReadingSession:
    """One reader's read of a subject's timepoints.

    Parameters
    ----------
    store : TrialStore
        The trial database.
    reader : str
        The reader's account name.
    password : str
        Checked on opening (a failed attempt is audited); signing asks for it again.
    segmenter : str or Segmenter, optional
        Segmenter (registry name, ``name:key=value`` options, or instance); default
        :func:`recist_tool.segment.default_segmenter_name`.
    mask_dir : path, optional
        Where confirmed lesion masks are written (``<mask_dir>/<reader>/<subject>/<visit>/``);
        default ``masks/`` beside a SQLite database file, else ``$XDG_DATA_HOME/recist-tool/masks``
        (``~/.local/share/recist-tool/masks``).
    series_paths : mapping, optional
        ``(subject, visit) → (series_path, series_uid)``, overriding what the database and a
        batch manifest (:data:`MANIFEST_NAMES`) beside a SQLite database file say.

    Raises
    ------
    AuthenticationError
        Wrong password or unknown / inactive account.
    ManifestError
        A batch manifest beside the database file that cannot be read.
    """

    def __init__(self, store: TrialStore, reader: str, password: str, *,
                 segmenter: Segmenter | str | None = None,
                 mask_dir: str | os.PathLike[str] | None = None,
                 series_paths: Mapping[tuple[str, str], tuple[str, str | None]] | None = None
                 ) -> None:
        self.store = store
        self.reader = store.authenticate(reader, password).name
        self._segmenter_spec = segmenter
        self._segmenter: Segmenter | None = None
        self._segmenter_lock = threading.Lock()
        self._series_paths = dict(series_paths or {})
        db_file = self._db_file()
        # masks stay next to a SQLite file; for a server database in the user's data folder (a
        # temporary folder would lose the files the stored measurements point to)
        data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
        self.mask_dir = Path(mask_dir) if mask_dir is not None else (
            db_file.parent / "masks" if db_file is not None else data_home / "recist-tool" / "masks")
        manifests = [] if db_file is None else [db_file.parent / n for n in MANIFEST_NAMES]
        for manifest in manifests:
            if manifest.is_file():
                from recist_tool.batch.manifest import read_manifest, series_locations

                for k, v in series_locations(read_manifest(manifest)).items():
                    self._series_paths.setdefault(k, v)
        self.subject: str | None = None
        self._volumes: dict[str, Volume] = {}
        self._proposals: dict[str, list[Proposal]] = {}
        self._registrations: dict[str, Any] = {}  # follow-up → its whole-scan registration

    # --- plumbing -----------------------------------------------------------------------------

    def _db_file(self) -> Path | None:
        url = str(getattr(self.store, "url", "") or "")
        if url.startswith("sqlite:///"):
            p = url[len("sqlite:///"):]
            return Path(p) if p and p != ":memory:" else None
        return None

    @property
    def segmenter(self) -> Segmenter:
        """The segmenter instance (loaded on first use; one load when threads ask at once)."""
        with self._segmenter_lock:
            return self._load_segmenter()

    def _load_segmenter(self) -> Segmenter:
        if self._segmenter is None:
            from recist_tool.segment import default_segmenter_name, get_segmenter

            spec = self._segmenter_spec or default_segmenter_name()
            if hasattr(spec, "segment"):  # an instance (the Segmenter protocol)
                self._segmenter = cast("Segmenter", spec)
            else:
                from recist_tool.segment.registry import parse_segmenter_spec

                name, opts = parse_segmenter_spec(str(spec))
                self._segmenter = get_segmenter(name, **opts)
        return self._segmenter

    def use_segmenter(self, segmenter: Segmenter | str | None) -> None:
        """Segment the next clicks with ``segmenter`` (as the constructor's ``segmenter``, e.g.
        ``"unet:edge=half-contrast"``); it is loaded on first use, and a bad spec raises
        then."""
        self._segmenter_spec = segmenter
        self._segmenter = None

    def warm_up(self) -> float:
        """Load the segmenter and segment a small synthetic lesion once, so that the reader's
        first click does not wait for the model to load and its first run (call it in a worker
        thread when the reading opens). Returns the seconds it took.

        Raises
        ------
        RecistToolError
            When the segmenter cannot be loaded (the first click would fail alike).
        """
        from recist_tool.errors import RecistToolError
        from recist_tool.segment import Prompt
        from recist_tool.segment.workflow import segment_and_measure

        t0 = time.perf_counter()
        seg = self.segmenter
        z, y, x = np.mgrid[:24, :96, :96]
        arr = np.full(z.shape, -1000, np.int16)  # air, a soft-tissue body, a 20 mm lesion
        arr[(y - 48) ** 2 + (x - 48) ** 2 < 44 ** 2] = 60
        arr[((z - 12) * 2.5) ** 2 + ((y - 48) * 0.8) ** 2 + ((x - 48) * 0.8) ** 2 < 100] = 150
        try:
            segment_and_measure(Volume.from_grid(arr, (2.5, 0.8, 0.8)), Prompt.at(12, 48, 48), seg)
        except RecistToolError:
            pass  # the model ran: that is what was to be warmed
        return time.perf_counter() - t0

    def _need_subject(self) -> str:
        if self.subject is None:
            raise UsageError("open a subject first")
        return self.subject

    # --- choosing what to read ----------------------------------------------------------------

    def trials(self) -> dict[str, str]:
        """Trial name → criteria."""
        return self.store.trials()

    def subjects(self, trial: str | None = None) -> list[str]:
        """Subject codes (of one trial or all)."""
        return self.store.subjects(trial)

    def open_subject(self, subject: str) -> list[tuple[str, _dt.date]]:
        """Start reading ``subject``; returns its visits ``(visit, date)`` in date order."""
        if self.store.subject_info(subject) is None:
            raise InputError(f"no subject {subject!r} in this database")
        self.subject = subject
        self._volumes.clear()
        self._proposals.clear()
        self._registrations.clear()
        return self.visits()

    def overall_choices(self) -> tuple[str, ...]:
        """The overall responses a reader may confirm at a follow-up of the open subject: its
        trial's criteria's own values (:data:`recist_tool.recist.OVERALL_RESPONSES`)."""
        from recist_tool.recist import overall_responses

        info = self.store.subject_info(self._need_subject())
        assert info is not None  # the open subject is in the database
        return tuple(r.value for r in overall_responses(info.criteria))

    def visits(self) -> list[tuple[str, _dt.date]]:
        """``(visit, date)`` of the open subject, by date (the first is the baseline)."""
        return self.store.timepoints(self._need_subject())

    @property
    def baseline_visit(self) -> str:
        """The subject's baseline visit (the earliest)."""
        v = self.visits()
        if not v:
            raise InputError(f"{self.subject} has no visits")
        return v[0][0]

    def is_baseline(self, visit: str) -> bool:
        """True for the subject's earliest visit."""
        return visit == self.baseline_visit

    def series_location(self, visit: str) -> tuple[str, str | None]:
        """``(series_path, series_uid)`` of a visit.

        Looked up in the ``series_paths`` given to the session, then a batch manifest
        (:data:`MANIFEST_NAMES`, CSV or TOML) beside a SQLite database file, then the database
        (timepoint ``series_path``).

        Raises
        ------
        InputError
            When no series is known for the visit.
        """
        subject = self._need_subject()
        if (subject, visit) in self._series_paths:
            return self._series_paths[(subject, visit)]
        info_fn = getattr(self.store, "timepoint_info", None)
        if info_fn is not None:
            info = info_fn(subject, visit)
            if getattr(info, "series_path", None):
                return info.series_path, info.series_uid
        raise InputError(f"{subject} {visit}: the database does not say where its series is; "
                         "open the series folder with File > Open")

    def set_series(self, visit: str, path: str | os.PathLike[str], series_uid: str | None = None
                   ) -> None:
        """Tell the session where a visit's series is (e.g. a folder the reader opened)."""
        self._series_paths[(self._need_subject(), visit)] = (str(path), series_uid)
        self._volumes.pop(visit, None)
        self._registrations.pop(visit, None)

    def open_visit(self, visit: str, volume: Volume | None = None) -> Volume:
        """Load (or reuse) the series of ``visit``; ``volume`` gives one already loaded."""
        subject = self._need_subject()
        if visit not in dict(self.visits()):
            raise InputError(f"{subject} has no visit {visit!r}")
        if volume is not None:
            self._volumes[visit] = volume
        if visit not in self._volumes:
            from recist_tool.io import load_volume

            path, uid = self.series_location(visit)
            self._volumes[visit] = load_volume(path, uid)
        return self._volumes[visit]

    def volume(self, visit: str) -> Volume:
        """The loaded series of a visit (loading it if needed)."""
        return self._volumes.get(visit) or self.open_visit(visit)

    # --- measuring ------------------------------------------------------------------------------

    def segment_at(self, visit: str, *, lps: Sequence[float] | None = None,
                   index: Sequence[float] | None = None, nodal: bool = False) -> Finding:
        """Segment and measure the lesion under a click (LPS mm or ``(z, y, x)`` voxel index).

        Raises
        ------
        NoLesionError
            The click is not on a lesion (air, fat, bone, outside the volume); nothing is stored.
        """
        from recist_tool.segment import Prompt

        if (lps is None) == (index is None):
            raise UsageError("give the click in LPS or as a voxel index (one of them)")
        prompt = Prompt.at_lps(*lps) if lps is not None else Prompt.at(*index)  # type: ignore[misc]
        return self._segment(visit, prompt, nodal)

    def segment_line(self, visit: str, ends_zyx: Sequence[Sequence[float]], *,
                     nodal: bool = False) -> Finding:
        """Segment and measure the lesion across a caliper line the reader drew (a line prompt:
        :class:`recist_tool.segment.Prompt` ``line_zyx``, its two ends as ``(z, y, x)`` voxel
        indices on one slice).

        Raises
        ------
        InputError
            A line shorter than :data:`MIN_LINE_MM` (a click in line mode, not a line).
        NoLesionError
            No lesion along the line; nothing is stored.
        SegmentationError
            A line reaching outside the series.
        """
        from recist_tool.segment import Prompt

        vol = self.volume(visit)
        a, b = (tuple(float(v) for v in p) for p in ends_zyx)
        length = float(np.linalg.norm(vol.index_to_lps(a) - vol.index_to_lps(b)))
        if length < MIN_LINE_MM:
            raise InputError(f"the line is {length:.1f} mm long: draw it across the lesion, "
                             "from edge to edge")
        return self._segment(visit, Prompt(line_zyx=(a, b)), nodal)  # type: ignore[arg-type]

    def _segment(self, visit: str, prompt: Any, nodal: bool) -> Finding:
        from recist_tool.segment.workflow import segment_and_measure

        mask, meas = segment_and_measure(self.volume(visit), prompt, self.segmenter, node=nodal)
        tight = mask.tight()
        return Finding(visit, meas, tight, meas, False, nodal, automatic_mask=tight)

    def remeasure(self, finding: Finding, mask: np.ndarray, offset: Sequence[int] = (0, 0, 0)
                  ) -> Finding:
        """Measure a mask the reader painted or erased (``mask`` on the series grid or a crop).

        Raises
        ------
        MeasurementError
            When the edited mask is empty.
        """
        from recist_tool.measure import measure_mask
        from recist_tool.segment import LesionMask, Prompt

        vol = self.volume(finding.visit)
        m = np.asarray(mask).astype(bool, copy=False)
        if not m.any():
            raise MeasurementError("the edited mask is empty: nothing to measure")
        old = finding.mask
        lm = LesionMask(m, cast("tuple[int, int, int]", tuple(int(v) for v in offset)), vol.shape,
                        getattr(old, "segmenter", "manual"), getattr(old, "version", ""),
                        getattr(old, "prompt", None) or Prompt(point_zyx=cast(
                            "tuple[float, float, float]",
                            tuple(float(v) for v in np.argwhere(m)[0] + np.asarray(offset))))).tight()
        meas = measure_mask(vol, lm.mask, node=finding.nodal, offset=lm.offset)
        return replace(finding, measurement=meas, mask=lm, edited=True)

    def measure_line(self, visit: str, long_axis: Sequence[Sequence[float]],
                     short_axis: Sequence[Sequence[float]] | None = None, *,
                     coords: str = "lps", nodal: bool = False,
                     finding: Finding | None = None) -> Finding:
        """A caliper measurement (the reader drew or dragged the axis end points).

        ``finding`` (an automatic finding being corrected) keeps its mask and automatic value.
        """
        from recist_tool.measure import measure_line

        vol = self.volume(visit)
        a, b = long_axis
        sa = None if short_axis is None else (short_axis[0], short_axis[1])
        meas = measure_line(vol, a, b, sa, coords=coords, node=nodal)  # type: ignore[arg-type]
        if finding is not None:
            return replace(finding, measurement=meas, edited=True)
        return Finding(visit, meas, None, None, True, nodal)

    # --- baseline classification --------------------------------------------------------------

    def next_lesion_id(self, category: str) -> str:
        """The next free lesion id of a category (``T03``, ``NT01``, ``NL02`` ...)."""
        cat = CATEGORIES.get(category.lower(), category.upper())
        prefix = LESION_ID_PREFIX.get(cat, "NL")
        used = {les.lesion_id for les in self.store.lesions(self._need_subject(), reader=self.reader)}
        n = 1
        while f"{prefix}{n:02d}" in used:
            n += 1
        return f"{prefix}{n:02d}"

    def check_baseline(self, finding: Finding | None = None, category: str | None = None, *,
                       organ: str = "", nodal: bool = False, lesion_id: str | None = None
                       ) -> tuple[Any, ...]:
        """Baseline rule violations of the stored baseline read, plus a candidate lesion if given.

        Uses :func:`recist_tool.recist.baseline.check_baseline` (measurability with the series'
        slice thickness, ≤ 5 targets, ≤ 2 per organ, nodes by short axis). With a candidate, only
        the violations that concern it are returned.
        """
        from recist_tool.recist import Category, Lesion, LesionAssessment, LesionState

        lesions = list(self.store.lesions(self._need_subject(), reader=self.reader))
        if category is None:
            return self._baseline_violations(lesions)
        cat = Category(CATEGORIES.get(category.lower(), category.upper()))
        cand_id = lesion_id or self.next_lesion_id(category)
        lesions.append(Lesion(cand_id, cat, organ, nodal))
        extra = (LesionAssessment(cand_id, LesionState.MEASURED, to_stored_mm(finding.diameter_mm))
                 if finding is not None else LesionAssessment(cand_id, LesionState.PRESENT, None))
        return tuple(v for v in self._baseline_violations(lesions, (extra,))
                     if v.lesion_id == cand_id)

    def _baseline_violations(self, lesions: Sequence[Any], extra: Sequence[Any] = ()
                             ) -> tuple[Any, ...]:
        """:func:`recist_tool.recist.baseline.check_baseline` over ``lesions`` and the stored
        baseline read's assessments plus ``extra`` ones, with the baseline series' slice
        thickness."""
        from recist_tool.recist import LesionAssessment, LesionState, Timepoint
        from recist_tool.recist.baseline import check_baseline

        bl = self.baseline_visit
        read = self._read_or_none(bl)
        stored = [LesionAssessment(m.lesion_id, LesionState(m.state), m.diameter_mm, m.fragments_mm)
                  for m in (read.measurements if read is not None else ())]
        vol = self._volumes.get(bl)
        thickness = vol.meta.slice_thickness_mm if vol is not None else None
        return check_baseline(lesions, Timepoint(bl, _dt.date.min, (*stored, *extra)), thickness)

    def add_lesion(self, finding: Finding | None, category: str, *, organ: str = "",
                   nodal: bool | None = None, lesion_id: str | None = None,
                   visit: str | None = None, equivocal: bool = False) -> AddedLesion:
        """Classify a lesion and store it with its measurement (or as present, without one).

        At baseline the lesion is a target or non-target and the baseline rules are checked
        first: a violation raises :class:`~recist_tool.errors.RuleViolation` with the rule's
        message and nothing is stored. At a follow-up only new lesions can be added (``equivocal``
        for an equivocal one).

        Raises
        ------
        RuleViolation
            A baseline rule forbids this classification, or the lesion overlaps one stored at
            the visit already (:meth:`overlapping`: it would be counted twice).
        """
        subject = self._need_subject()
        visit = visit or (finding.visit if finding is not None else self.baseline_visit)
        node = bool(finding.nodal if nodal is None and finding is not None else nodal)
        if finding is not None and node != finding.nodal:
            finding = self.renode(finding, node)
        cat = CATEGORIES.get(category.lower(), category.upper())
        lid = (lesion_id or self.next_lesion_id(cat)).strip().upper()
        overlap = None if finding is None else self._overlap_message(finding, lid, new=True)
        if self.is_baseline(visit):
            if cat not in ("TARGET", "NON-TARGET"):
                raise RuleViolation(f"{lid}: at baseline a lesion is a target or a non-target")
            violations = self.check_baseline(finding, cat, organ=organ, nodal=node, lesion_id=lid)
            if violations or overlap:
                raise RuleViolation("; ".join([v.message for v in violations]
                                              + ([overlap] if overlap else [])))
            with self.store.atomic():  # the lesion and its measurement, or neither
                self.store.add_lesion(subject, visit, lid, cat, reader=self.reader, organ=organ,
                                      nodal=node)
                if finding is not None:
                    self.confirm(lid, finding)
                else:
                    self.store.record_measurement(subject, visit, lid, reader=self.reader,
                                                  state="PRESENT")
            return AddedLesion(lid, cat)
        if cat != "NEW":
            raise RuleViolation(f"{lid}: after baseline only new lesions can be added "
                                f"({visit} is a follow-up)")
        if overlap:
            raise RuleViolation(overlap)
        kwargs: dict[str, Any] = {}
        if finding is not None and not equivocal:
            kwargs = self._measurement_values(subject, visit, lid, finding)
        self.store.record_new_lesion(subject, visit, lid, reader=self.reader, organ=organ,
                                     equivocal=equivocal, nodal=node, **kwargs)
        return AddedLesion(lid, cat)

    def delete_lesion(self, lesion_id: str, reason: str) -> None:
        """Delete one of this reader's lesions (recorded by mistake, or twice) with its
        assessments at every visit, before a read holding it is signed; audited with ``reason``
        (:meth:`TrialStore.delete_lesion`)."""
        self.store.delete_lesion(self._need_subject(), lesion_id, reader=self.reader,
                                 reason=reason)
        self._proposals.clear()  # proposals name the lesions tracked from baseline

    def change_lesion(self, lesion_id: str, reason: str, *, new_id: str | None = None,
                      category: str | None = None, organ: str | None = None) -> str:
        """Rename or reclassify one of this reader's lesions before a read holding it is signed;
        audited with ``reason`` (:meth:`TrialStore.update_lesion`).

        A baseline lesion's new category or organ is checked against the baseline rules first
        (≤ 5 targets, ≤ 2 per organ, measurability): a violation raises
        :class:`~recist_tool.errors.RuleViolation` and nothing changes.

        Returns
        -------
        str
            The lesion's id afterwards.
        """
        from recist_tool.recist import Category

        subject = self._need_subject()
        lid = lesion_id.strip().upper()
        cat = None if category is None else CATEGORIES.get(category.lower(), category.upper())
        lesions = self.store.lesions(subject, reader=self.reader)
        old = next((les for les in lesions if les.lesion_id == lid), None)
        if old is None:
            raise InputError(f"{subject} has no lesion {lid} in {self.reader}'s read")
        if (cat is not None or organ is not None) and not old.category.is_new:
            new = replace(old, category=Category(cat) if cat else old.category,
                          organ=old.organ if organ is None else organ)
            after = [new if les.lesion_id == lid else les for les in lesions]
            if violations := [v for v in self._baseline_violations(after) if v.lesion_id == lid]:
                raise RuleViolation("; ".join(v.message for v in violations))
        self.store.update_lesion(subject, lid, reader=self.reader, reason=reason, code=new_id,
                                 category=cat, organ=organ)
        self._proposals.clear()
        return (new_id or lid).strip().upper()

    def resegment(self, finding: Finding) -> Finding:
        """The finding segmented again from its click by the current segmenter (after
        :meth:`use_segmenter`): a click's own, unedited mask only; an edited or tracked mask,
        or a line measurement, is returned as it is. Nothing is stored.

        Raises
        ------
        NoLesionError
            The segmenter finds no lesion at the click.
        """
        from recist_tool.segment.workflow import segment_and_measure

        if finding.mask is None or finding.edited or finding.tracking:
            return finding
        mask, meas = segment_and_measure(self.volume(finding.visit), finding.mask.prompt,
                                         self.segmenter, node=finding.nodal)
        tight = mask.tight()
        return replace(finding, measurement=meas, mask=tight, automatic=meas,
                       automatic_mask=tight)

    def renode(self, finding: Finding, nodal: bool) -> Finding:
        """The finding under a changed nodal (lymph node) flag.

        A click's own, unedited mask is segmented again under the new flag (the segmenter may
        answer a node differently: ``unet`` hands nodes to ``classic``); an edited or tracked
        mask, or a line measurement, is measured again (a node is measured by its short axis,
        perhaps on another slice). Nothing is stored.

        Parameters
        ----------
        finding : Finding
            The finding under review.
        nodal : bool
            The new flag.

        Returns
        -------
        Finding
            A new finding; ``finding`` itself is not changed.
        """
        from recist_tool.measure import measure_mask
        from recist_tool.segment import NoLesionError
        from recist_tool.segment.workflow import segment_and_measure

        if finding.mask is not None and not finding.edited and not finding.tracking:
            try:
                mask, meas = segment_and_measure(self.volume(finding.visit), finding.mask.prompt,
                                                 self.segmenter, node=nodal)
            except NoLesionError:
                pass  # keep the mask the reader saw, re-measured below
            else:
                tight = mask.tight()
                return replace(finding, nodal=nodal, measurement=meas, mask=tight,
                               automatic=meas, automatic_mask=tight)
        if finding.mask is None:
            return replace(finding, nodal=nodal,
                           measurement=replace(finding.measurement, node=nodal))
        meas = measure_mask(self.volume(finding.visit), finding.mask.mask, node=nodal,
                            offset=finding.mask.offset)
        auto = meas if not finding.edited else finding.automatic
        return replace(finding, nodal=nodal, measurement=meas, automatic=auto)

    # --- storing measurements -----------------------------------------------------------------

    def _read_or_none(self, visit: str) -> Any:
        from recist_tool.errors import StoreError

        try:
            return self.store.get_read(self._need_subject(), visit, reader=self.reader)
        except (InputError, StoreError):
            return None

    def stored(self, visit: str) -> dict[str, Any]:
        """This reader's stored measurements of a visit: lesion id → MeasurementInfo."""
        read = self._read_or_none(visit)
        return {} if read is None else {m.lesion_id: m for m in read.measurements}

    def overlapping(self, finding: Finding, *, exclude: str | None = None) -> list[str]:
        """The stored lesions of the finding's visit that it overlaps (it would count them twice).

        Two masks overlap when they share :data:`OVERLAP_FRACTION` of the smaller one's voxels or
        more. Where a side has no mask (a caliper line, or a stored mask that cannot be read), the
        middle of its long axis inside the other's mask counts as overlap, and two lines overlap
        when their middles lie closer than half the shorter of them.

        Parameters
        ----------
        finding : Finding
            The lesion about to be stored.
        exclude : str, optional
            A lesion id left out (the lesion the finding measures).

        Returns
        -------
        list of str
            Lesion ids, sorted.
        """
        from recist_tool.errors import RecistToolError
        from recist_tool.io.masks import load_mask_crop

        vol = self.volume(finding.visit)
        fm = None if finding.mask is None or finding.mask.is_empty else (
            finding.mask.mask, finding.mask.offset)
        f_mid = np.mean(np.asarray(finding.measurement.long_axis_endpoints_lps, float), axis=0)
        out = []
        for lid, m in self.stored(finding.visit).items():
            ends = (m.endpoints_lps or {}).get("long")
            if lid == (exclude or "").upper() or m.state != "MEASURED":
                continue
            sm = None
            if m.mask_path:
                try:
                    sm = load_mask_crop(m.mask_path, vol)
                except RecistToolError:
                    sm = None
            if fm is not None and sm is not None:
                hit = shared_fraction(fm, sm) >= OVERLAP_FRACTION
            elif sm is not None:
                hit = voxel_in_mask(sm, vol.lps_to_index(f_mid))
            elif not ends:
                hit = False
            else:
                s_mid = np.mean(np.asarray(ends, float), axis=0)
                if fm is not None:
                    hit = voxel_in_mask(fm, vol.lps_to_index(s_mid))
                else:
                    half = 0.5 * min(float(finding.measurement.long_axis_mm or 0.0),
                                     float(m.long_axis_mm or 0.0))
                    hit = float(np.linalg.norm(f_mid - s_mid)) < half
            if hit:
                out.append(lid)
        return sorted(out)

    def _overlap_message(self, finding: Finding, lesion_id: str, *, new: bool) -> str | None:
        """Why ``finding`` may not be stored as ``lesion_id``: the other stored lesions it
        overlaps (:meth:`overlapping`); None when it overlaps none."""
        other = self.overlapping(finding, exclude=None if new else lesion_id)
        if not other:
            return None
        what = f"new lesion {lesion_id}" if new else lesion_id
        return (f"{what} not stored: it overlaps {', '.join(other)} stored on {finding.visit} "
                f"(the same lesion would be counted twice); to correct {other[0]}, select it "
                "and confirm")

    def _refuse_overlap(self, finding: Finding, lesion_id: str, *, new: bool) -> None:
        """Raise :class:`RuleViolation` when ``finding`` overlaps another stored lesion."""
        if msg := self._overlap_message(finding, lesion_id, new=new):
            raise RuleViolation(msg)

    def _measurement_values(self, subject: str, visit: str, lesion_id: str, finding: Finding,
                            measurement: Any = None) -> dict[str, Any]:
        """The stored record of ``finding`` (:func:`recist_tool.store.values.measurement_values`),
        its mask written to :attr:`mask_dir`; ``measurement`` (the automatic value stored before a
        manual correction) goes with the segmenter's own mask."""
        m = measurement or finding.measurement
        vol = self.volume(visit)
        ends = axis_endpoints(m, centroid_lps=finding.centroid_lps(vol), tracking=finding.tracking)
        mask = finding.mask if measurement is None else (finding.automatic_mask or finding.mask)
        path = sha = None
        if mask is not None:
            folder = mask_folder(self.mask_dir, self.reader, subject, visit)
            file, sha = save_mask_file(mask, vol, folder, lesion_id)
            path = str(file)
        vml = m.volume_ml if m.volume_ml is not None else (
            mask.volume_ml(vol) if mask is not None else None)
        return measurement_values(
            m.long_axis_mm, m.short_axis_mm, vml, ends, segmenter=getattr(mask, "segmenter", None),
            segmenter_version=getattr(mask, "version", None),
            method="manual" if (finding.edited and measurement is None) else "automatic",
            mask_path=path, mask_sha256=sha)

    def confirm(self, lesion_id: str, finding: Finding, *, reason: str | None = None) -> None:
        """Store a lesion's measurement at the finding's visit (written at once).

        A manual correction (edited mask or moved end points) of an automatic finding is stored
        after the automatic value, with a reason, so the audit trail keeps the automatic value
        (old → new). Changing a stored measurement needs a reason (a default one is written).

        Raises
        ------
        RuleViolation
            The finding overlaps another lesion stored at its visit (:meth:`overlapping`);
            nothing is stored.
        """
        subject = self._need_subject()
        visit = finding.visit
        lid = lesion_id.upper()
        self._refuse_overlap(finding, lid, new=False)
        stored = self.stored(visit)
        auto = None
        if finding.edited and finding.automatic is not None and lid not in stored:
            auto = self._measurement_values(subject, visit, lid, finding, finding.automatic)
        values = self._measurement_values(subject, visit, lid, finding)
        replaces = lid in stored or auto is not None
        if replaces and reason is None:
            a = finding.automatic
            reason = ("manual correction by the reader" + (
                f" (automatic long axis {a.long_axis_mm:.1f} mm)" if a is not None else "")
                if finding.edited else "re-measured by the reader")
        with self.store.atomic():  # the automatic and the corrected measurement, or neither
            if auto is not None:
                self.store.record_measurement(subject, visit, lid, reader=self.reader, **auto)
            self.store.record_measurement(subject, visit, lid, reader=self.reader,
                                          reason=reason if replaces else None, **values)

    def mark(self, visit: str, lesion_id: str, state: str, *, reason: str | None = None) -> None:
        """Record a lesion without a measurement: absent, too small, not evaluable, present,
        unequivocal progression (non-targets) ..."""
        st = STATES.get(state.lower(), state.upper())
        lid = lesion_id.upper()
        if lid in self.stored(visit) and reason is None:
            reason = f"reader assessment: {st.lower()}"
        self.store.record_measurement(self._need_subject(), visit, lid, reader=self.reader,
                                      state=st, reason=reason if lid in self.stored(visit) else None)

    # --- follow-up ----------------------------------------------------------------------------

    def propose_followup(self, visit: str) -> list[Proposal]:
        """Propose every baseline lesion at a follow-up: tracked from its stored baseline position
        (:func:`recist_tool.track.track_lesions`), or to be placed by the reader when the baseline
        read has no position for it."""
        from recist_tool.errors import StoreError
        from recist_tool.track import baseline_lesions, track_lesions

        subject = self._need_subject()
        bl = self.baseline_visit
        if visit == bl:
            raise UsageError(f"{visit} is the baseline: nothing to propose")
        try:
            read = self.store.get_read(subject, bl, reader=self.reader)
        except (InputError, StoreError) as exc:
            raise InputError(f"{subject}: read the baseline {bl} first") from exc
        info = {les.lesion_id: les for les in self.store.lesions(subject, reader=self.reader)}
        refs = baseline_lesions(read)
        out: list[Proposal] = []
        tracked: dict[str, Any] = {}
        if refs:
            res = track_lesions(self.volume(bl), self.volume(visit), refs, segmenter=self.segmenter)
            tracked = {t.lesion_id: t for t in res.lesions}
            self._registrations[visit] = res.registration
        for m in read.measurements:
            les = info.get(m.lesion_id)
            if les is None or les.category.is_new:
                continue
            t = tracked.get(m.lesion_id)
            if t is None:
                out.append(Proposal(m.lesion_id, les.category.value, les.organ, les.nodal, "place",
                                    None, 0.0, ("no position stored at baseline: assess it",),
                                    None))
                continue
            f = None
            if t.measurement is not None:
                tm = t.mask.tight() if t.mask is not None else None
                f = Finding(visit, t.measurement, tm, t.measurement, False, les.nodal,
                            {"status": t.status, "confidence": t.confidence}, tm)
            out.append(Proposal(m.lesion_id, les.category.value, les.organ, les.nodal, t.status,
                                t.proposed_center_lps, t.confidence, t.notes, f))
        self._proposals[visit] = out
        return out

    def proposals(self, visit: str) -> list[Proposal]:
        """The last proposals made for a visit (empty before :meth:`propose_followup`)."""
        return list(self._proposals.get(visit, ()))

    def alignment(self, lesion_id: str | None = None) -> Alignment:
        """How to line up the visits side by side on a lesion
        (:func:`recist_tool.align.align_visits`): its stored positions (this reader's
        measurements), else the last proposals' tracked positions, else the whole-scan
        registration the last proposals used; with no lesion, that registration at the baseline
        volume's centre (when loaded).
        """

        visits = [v for v, _ in self.visits()]
        stored: dict[str, Any] = {}
        tracked: dict[str, Any] = {}
        if lesion_id is not None:
            for v in visits:
                m = self.stored(v).get(lesion_id)
                stored[v] = None if m is None else lesion_position(m)
                p = next((p for p in self._proposals.get(v, ()) if p.lesion_id == lesion_id),
                         None)
                tracked[v] = None if p is None else p.center_lps
        bl = self.baseline_visit
        ref = None
        if bl in self._volumes:
            vol = self._volumes[bl]
            ref = vol.index_to_lps((np.asarray(vol.shape, float) - 1) / 2)
        return align_visits(bl, visits, stored=stored, tracked=tracked,
                            registrations={v: r.map_point for v, r in self._registrations.items()},
                            reference_lps=ref)

    def has_registration(self, visit: str) -> bool:
        """Whether a whole-scan registration of ``visit`` to the baseline is kept (from
        :meth:`propose` or :meth:`registration_job`)."""
        return visit in self._registrations

    def registration_job(self, visit: str) -> Callable[[], Any]:
        """What registers a follow-up to the baseline for :meth:`alignment` when nothing has
        (:meth:`propose` keeps its own): a call without arguments, safe to run in a worker
        thread, that runs :func:`recist_tool.track.register_rigid` (the baseline's stored
        lesions left out of the match, as the tracker leaves them out), keeps the result for
        this subject (unless another subject or series was opened, or a registration was kept,
        meanwhile) and returns it. The database is read here, in the caller's thread; the
        volumes must be open (:meth:`open_visit`).
        """
        from recist_tool.track import register_rigid

        subject = self._need_subject()
        bl = self.baseline_visit
        if visit == bl:
            raise UsageError(f"{visit} is the baseline: nothing to register")
        base, follow = self.volume(bl), self.volume(visit)
        balls = []
        for m in self.stored(bl).values():
            p = lesion_position(m)
            if p is not None and m.long_axis_mm is not None:
                balls.append((p, max(10.0, float(m.long_axis_mm))))  # the lesion and a margin
        registrations = self._registrations

        def run() -> Any:
            if visit in registrations:
                return registrations[visit]
            reg = register_rigid(base, follow, exclude=balls)
            if self.subject == subject and self._volumes.get(bl) is base \
                    and self._volumes.get(visit) is follow:  # still the series it registered
                registrations.setdefault(visit, reg)
            return registrations.get(visit, reg)

        return run

    def accept_proposal(self, proposal: Proposal, *, visit: str | None = None) -> None:
        """Confirm a tracked proposal as measured (an ``absent?`` one is refused: mark it)."""
        if proposal.finding is None:
            raise InputError(f"{proposal.lesion_id}: nothing was found to accept; mark it absent, "
                             "too small or not evaluable, or measure it")
        self.confirm(proposal.lesion_id, proposal.finding if visit is None
                     else replace(proposal.finding, visit=visit))

    # --- responses, sign-off, export ----------------------------------------------------------

    def compute_responses(self) -> list[Any]:
        """Run the RECIST engine over this reader's reads (stored on open reads)."""
        return self.store.compute_responses(self._need_subject(), reader=self.reader)

    def timepoint_table(self, *, compute: bool = True) -> ReadingTable:
        """Lesions × timepoints, SOD, % change and responses of this reader's read
        (:func:`recist_tool.reading.tables.reading_table`); ``compute`` runs the engine first.

        The % changes are the engine's (:func:`recist_tool.recist.timepoint.pct_change`, 0.01 %),
        as the reports show them.
        """
        subject = self._need_subject()
        if compute:
            try:
                self.compute_responses()
            except InputError:
                pass
        visits = tuple(self.visits())
        lesions = self.store.lesions(subject, reader=self.reader)
        return reading_table(visits, lesions, [self._read_or_none(v) for v, _ in visits])

    def sign(self, visit: str, password: str, *, override: str | None = None,
             reason: str | None = None, meaning: str = "read complete") -> str:
        """Sign this reader's read of a visit (password asked again); locks it.

        ``override`` confirms another overall response than the computed one and needs a
        ``reason``. Returns the sha256 of the signed content.
        """
        subject = self._need_subject()
        if not self.is_baseline(visit):
            self.compute_responses()
        return self.store.sign(subject, visit, reader=self.reader, password=password,
                               meaning=meaning, confirmed_overall=override, reason=reason)

    def export(self, fmt: str, out_dir: str | os.PathLike[str], *, include_unsigned: bool = False,
               options: Mapping[str, Any] | None = None) -> list[Path]:
        """Export this reader's read of the subject with ``recist_tool.export.run_export``.

        Returns
        -------
        list of Path
            The files written (into ``out_dir``).

        Raises
        ------
        UsageError
            When this install has no export framework or not this format.
        InputError
            The exporter's own refusals, e.g. unsigned reads without ``include_unsigned``.
        """
        try:
            from recist_tool.export import run_export  # type: ignore[import-not-found]
        except ImportError as exc:
            raise UsageError("export not available in this install") from exc
        formats = export_formats()
        if fmt not in formats:
            raise UsageError(f"export format {fmt!r} is not available in this install"
                             + (f" (one of {', '.join(formats)})" if formats else ""))
        return list(run_export(self.store, fmt, Path(out_dir), subjects=[self._need_subject()],
                               reader=self.reader, include_unsigned=include_unsigned,
                               options=dict(options or {})))
