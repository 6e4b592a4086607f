"""`ReaderSession`: a logged-in reader's view of the store (what :meth:`TrialStore.login` gives).

Each method is the :class:`~recist_tool.store.service.TrialStore` method of that name with
``reader=`` (``adjudicator=`` for the adjudicator's two) bound to the session's account. A session
cannot name another reader: passing ``reader=`` / ``adjudicator=`` raises
:class:`~recist_tool.store.records.AuthenticationError`, so it never reads or writes another
reader's records. Signing, amending and the adjudicator's view of all readers' responses still ask
for the password again. Nothing else of the store (accounts, trials, audit trail) is reachable.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from recist_tool.recist import Category, LesionState, TimepointResponse
from recist_tool.recist import Lesion as RLesion
from recist_tool.store.records import AuthenticationError, Discrepancy, ReaderInfo, ReadInfo

if TYPE_CHECKING:  # pragma: no cover
    from recist_tool.store.service import TrialStore

__all__ = ["ReaderSession"]


class ReaderSession:
    """A logged-in reader's view of the store: the reader-scoped methods of
    :class:`~recist_tool.store.service.TrialStore`, with the reader bound to the account.

    Attributes
    ----------
    reader : ReaderInfo
        The account the session belongs to.
    """

    def __init__(self, store: TrialStore, info: ReaderInfo) -> None:
        self._store = store
        self.reader = info

    def _me(self, named: str | None) -> str:
        """The session's account name; refuses any reader named by the caller."""
        if named is not None:
            raise AuthenticationError(f"this session belongs to {self.reader.name}; it cannot act "
                                      f"as {named}")
        return self.reader.name

    # --- the reader's records -----------------------------------------------------------------

    def add_lesion(self, subject: str, visit: str, lesion_id: str, category: Category | str, *,
                   organ: str = "", nodal: bool = False, reason: str | None = None,
                   exist_ok: bool = False, reader: str | None = None) -> None:
        """:meth:`TrialStore.add_lesion <recist_tool.store.service.TrialStore.add_lesion>`."""
        self._store.add_lesion(subject, visit, lesion_id, category, reader=self._me(reader),
                               organ=organ, nodal=nodal, reason=reason, exist_ok=exist_ok)

    def record_measurement(self, subject: str, visit: str, lesion_id: str, *,
                           reader: str | None = None, **values: Any) -> None:
        """:meth:`TrialStore.record_measurement
        <recist_tool.store.service.TrialStore.record_measurement>`; ``values`` are its keyword
        arguments (axes, state, end points, volume, mask, provenance, reason)."""
        self._store.record_measurement(subject, visit, lesion_id, reader=self._me(reader),
                                       **values)

    def assess_non_target(self, subject: str, visit: str, lesion_id: str,
                          state: LesionState | str, *, reason: str | None = None,
                          reader: str | None = None) -> None:
        """:meth:`TrialStore.assess_non_target
        <recist_tool.store.service.TrialStore.assess_non_target>`."""
        self._store.assess_non_target(subject, visit, lesion_id, state, reader=self._me(reader),
                                      reason=reason)

    def record_new_lesion(self, subject: str, visit: str, lesion_id: str, *, organ: str = "",
                          equivocal: bool = False, nodal: bool = False,
                          category: Category | str = Category.NEW,
                          long_axis_mm: Decimal | float | None = None,
                          short_axis_mm: Decimal | float | None = None,
                          reason: str | None = None, exist_ok: bool = False,
                          reader: str | None = None, **measurement: Any) -> None:
        """:meth:`TrialStore.record_new_lesion
        <recist_tool.store.service.TrialStore.record_new_lesion>` (``measurement``: the other
        fields of :meth:`record_measurement`)."""
        self._store.record_new_lesion(
            subject, visit, lesion_id, reader=self._me(reader), organ=organ, equivocal=equivocal,
            nodal=nodal, category=category, long_axis_mm=long_axis_mm,
            short_axis_mm=short_axis_mm, reason=reason, exist_ok=exist_ok, **measurement)

    def delete_measurement(self, subject: str, visit: str, lesion_id: str, *, reason: str,
                           reader: str | None = None) -> None:
        """:meth:`TrialStore.delete_measurement
        <recist_tool.store.service.TrialStore.delete_measurement>`."""
        self._store.delete_measurement(subject, visit, lesion_id, reader=self._me(reader),
                                       reason=reason)

    def get_read(self, subject: str, visit: str, *, version: int | None = None,
                 reader: str | None = None) -> ReadInfo:
        """:meth:`TrialStore.get_read <recist_tool.store.service.TrialStore.get_read>`."""
        return self._store.get_read(subject, visit, reader=self._me(reader), version=version)

    def read_versions(self, subject: str, visit: str, *,
                      reader: str | None = None) -> list[ReadInfo]:
        """:meth:`TrialStore.read_versions
        <recist_tool.store.service.TrialStore.read_versions>`."""
        return self._store.read_versions(subject, visit, reader=self._me(reader))

    def lesions(self, subject: str, *, reader: str | None = None) -> list[RLesion]:
        """:meth:`TrialStore.lesions <recist_tool.store.service.TrialStore.lesions>`."""
        return self._store.lesions(subject, reader=self._me(reader))

    def compute_responses(self, subject: str, *,
                          reader: str | None = None) -> list[TimepointResponse]:
        """:meth:`TrialStore.compute_responses
        <recist_tool.store.service.TrialStore.compute_responses>`."""
        return self._store.compute_responses(subject, reader=self._me(reader))

    def sign(self, subject: str, visit: str, *, password: str, meaning: str = "read complete",
             confirmed_overall: str | None = None, reason: str | None = None,
             reader: str | None = None) -> str:
        """:meth:`TrialStore.sign <recist_tool.store.service.TrialStore.sign>` (the password
        again)."""
        return self._store.sign(subject, visit, reader=self._me(reader), password=password,
                                meaning=meaning, confirmed_overall=confirmed_overall,
                                reason=reason)

    def amend(self, subject: str, visit: str, *, password: str, reason: str,
              reader: str | None = None) -> int:
        """:meth:`TrialStore.amend <recist_tool.store.service.TrialStore.amend>` (the password
        again)."""
        return self._store.amend(subject, visit, reader=self._me(reader), password=password,
                                 reason=reason)

    # --- the adjudicator's view ---------------------------------------------------------------

    def discrepancies(self, subject: str, *, password: str,
                      adjudicator: str | None = None) -> list[Discrepancy]:
        """:meth:`TrialStore.discrepancies
        <recist_tool.store.service.TrialStore.discrepancies>` as this account (an adjudicator)."""
        return self._store.discrepancies(subject, adjudicator=self._me(adjudicator),
                                         password=password)

    def adjudicate(self, subject: str, visit: str, *, password: str, chosen_reader: str,
                   other_reader: str, reason: str, adjudicator: str | None = None) -> None:
        """:meth:`TrialStore.adjudicate <recist_tool.store.service.TrialStore.adjudicate>` as
        this account (an adjudicator)."""
        self._store.adjudicate(subject, visit, adjudicator=self._me(adjudicator),
                               password=password, chosen_reader=chosen_reader,
                               other_reader=other_reader, reason=reason)
