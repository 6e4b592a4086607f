"""recist_tool.align: each visit's shift for side-by-side reading."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from recist_tool.align import align_visits, lesion_position

VISITS = ["BL", "W06", "W12"]


def _moved(by):
    """A registration that moves every baseline point by ``by`` (LPS mm)."""
    return lambda p: tuple(np.asarray(p, float) + np.asarray(by, float))


def test_each_follow_up_is_shifted_onto_the_baseline_lesion_by_the_best_it_has():
    a = align_visits("BL", VISITS, stored={"BL": (10, 20, 30), "W06": (13, 24, 30), "W12": None},
                     tracked={"W06": (0, 0, 0), "W12": (11, 19, 35)},
                     registrations={"W06": _moved((50, 50, 50)), "W12": _moved((9, 9, 9))})
    assert a.anchor_lps == (10.0, 20.0, 30.0)
    assert a.offsets == {"BL": (0.0, 0.0, 0.0), "W06": (-3.0, -4.0, 0.0),
                         "W12": (-1.0, 1.0, -5.0)}
    assert a.sources == {"BL": "baseline", "W06": "stored", "W12": "tracked"}
    assert a.describe("T02") == ("T02: W06 by its stored measurement (5.0 mm), W12 by the "
                                 "tracked position (5.2 mm)")


def test_registration_at_the_lesion_when_nothing_else_is_known_and_none_without_one():
    a = align_visits("BL", VISITS, stored={"BL": (1, 2, 3)},
                     registrations={"W06": _moved((2, -1, 4))})
    assert a.offsets["W06"] == (-2.0, 1.0, -4.0) and a.sources["W06"] == "registration"
    assert a.offsets["W12"] == (0.0, 0.0, 0.0) and a.sources["W12"] == "none"


def test_no_lesion_lines_the_whole_scans_up_by_their_registration_at_the_reference():
    turn = lambda p: (-float(p[1]), float(p[0]), float(p[2]))  # noqa: E731 - 90° about z
    a = align_visits("BL", VISITS, registrations={"W06": turn}, reference_lps=(10, 0, 0))
    assert a.anchor_lps is None
    assert a.offsets["W06"] == (10.0, -10.0, 0.0) and a.sources["W06"] == "registration"
    assert a.sources["W12"] == "none"
    # without a reference point (the baseline not loaded) nothing is shifted
    a = align_visits("BL", VISITS, registrations={"W06": turn})
    assert set(a.sources.values()) == {"baseline", "none"}
    assert a.describe() == "the whole scans: W06 not shifted, W12 not shifted"


def test_a_lesion_first_seen_at_a_follow_up_is_anchored_where_the_baseline_would_show_it():
    a = align_visits("BL", VISITS, stored={"W12": (5, 5, 5)},
                     registrations={"W12": _moved((1, 2, 3))})
    assert a.anchor_lps == pytest.approx((4.0, 3.0, 2.0))
    assert a.offsets["W12"] == pytest.approx((-1.0, -2.0, -3.0))
    assert a.sources["W12"] == "stored" and a.sources["W06"] == "none"


def test_lesion_position_is_the_middle_of_the_stored_long_axis():
    m = SimpleNamespace(endpoints_lps={"long": [[0, 0, 0], [10, 4, 2]], "short": None})
    assert lesion_position(m) == (5.0, 2.0, 1.0)
    assert lesion_position(SimpleNamespace(endpoints_lps=None)) is None
    assert lesion_position(SimpleNamespace(endpoints_lps={"long": None})) is None
