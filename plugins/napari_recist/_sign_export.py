"""Sign-off and export of the RECIST reading panel (the timepoint tab, under the table): the overall
response confirmed or overridden with a reason, the visit signed with the reader's password, and
the subject's reads exported.

A thin Qt view over :class:`recist_tool.reading.ReadingSession`: ``overall_choices`` (the
criteria's own values, iRECIST's too), ``sign`` (the password checked, scrypt) and ``export``
(the formats of :func:`recist_tool.reading.export_formats`) run in the panel's worker threads
(:class:`napari_recist._tasks.Tasks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from recist_tool.reading import export_formats

#: The override choice that confirms the computed overall response.
COMPUTED = "(computed)"


class SignExportPanel(QWidget):
    """Overall response, reason, sign; export format and folder.

    Parameters
    ----------
    panel : ReadingWidget
        What signing and exporting use: ``session``, ``visit``, ``busy`` and ``tasks``,
        ``say``, ``refresh_table``, ``alive``.

    Attributes
    ----------
    override_combo : QComboBox
        :data:`COMPUTED`, then the criteria's overall responses.
    reason_edit : QLineEdit
        Why the computed response is overridden.
    sign_btn, export_btn : QPushButton
    export_combo : QComboBox
        The export formats of this install.
    export_unsigned : QCheckBox
        Export unsigned reads too.
    export_label : QLabel
        The files last written, or why export is not available.
    """

    def __init__(self, panel: Any) -> None:
        super().__init__()
        self.panel = panel
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        f = QFormLayout()
        self.override_combo = QComboBox()
        self.override_combo.addItem(COMPUTED)  # the criteria's values come with the subject
        self.reason_edit = QLineEdit()
        self.reason_edit.setPlaceholderText("reason (needed to override)")
        self.sign_btn = QPushButton("Sign this visit…")
        self.sign_btn.clicked.connect(self.sign)
        f.addRow("Overall response", self.override_combo)
        f.addRow("Reason", self.reason_edit)
        f.addRow(self.sign_btn)
        v.addLayout(f)
        row = QHBoxLayout()
        self.export_combo = QComboBox()
        self.export_btn = QPushButton("Export…")
        self.export_btn.clicked.connect(self.export)
        self.export_unsigned = QCheckBox("include unsigned")
        row.addWidget(self.export_combo)
        row.addWidget(self.export_unsigned)
        row.addWidget(self.export_btn)
        v.addLayout(row)
        self.export_label = QLabel("")
        self.export_label.setWordWrap(True)
        v.addWidget(self.export_label)
        self.fill_exports()

    def fill_exports(self) -> None:
        """Offer the export formats of this install (or say there are none)."""
        self.export_combo.clear()
        formats = export_formats()
        if formats:
            self.export_combo.addItems(sorted(formats))
            self.export_label.setText("")
        else:
            self.export_label.setText("export not available in this install")
        self.export_btn.setEnabled(bool(formats) and self.panel.session is not None)

    def show_overall_choices(self, choices: Sequence[str]) -> None:
        """Offer :data:`COMPUTED` and the criteria's overall responses."""
        self.override_combo.clear()
        self.override_combo.addItems([COMPUTED, *choices])

    def enable(self, on: bool, busy: bool) -> None:
        """The buttons usable with a subject open (``on``) and nothing running."""
        self.sign_btn.setEnabled(on and not busy)
        self.export_btn.setEnabled(on and not busy and self.export_combo.count() > 0)

    def sign(self) -> bool:
        """Sign the visit under review: the password is asked again, then checked (scrypt,
        0.1-0.2 s) and the read signed in a worker thread, the panel busy meanwhile, as the Log
        in button does; the message then says ``"<subject> <visit> signed (sha256 …)"``, or why
        not. Returns whether the signing started."""
        p = self.panel
        s = p.session
        if s is None or s.subject is None:
            return False
        if p.busy:
            p.say(f"busy ({p.tasks.task}): sign when it is done", error=True)
            return False
        subject, visit = s.subject, p.visit
        pw, ok = QInputDialog.getText(self, "Sign read", f"Password of {s.reader} to sign "
                                      f"{subject} {visit}:", QLineEdit.Password)
        if not ok:
            return False
        over = self.override_combo.currentText()
        override = None if over == COMPUTED else over
        reason = self.reason_edit.text().strip() or None

        def work() -> str:
            return s.sign(visit, pw, override=override, reason=reason)

        def signed(digest: str) -> None:
            if not p.alive() or p.session is not s:
                return
            p.refresh_table()
            p.say(f"{subject} {visit} signed (sha256 {digest[:12]}…)")

        def refused(exc: BaseException) -> None:
            if p.alive():
                p.tasks.report_error(exc)

        p.tasks.run(work, f"Signing {subject} {visit}", f"signing {subject} {visit}…",
                    signed, refused)
        return True

    def export(self) -> bool:
        """Export with the chosen format into a folder the reader picks, in a worker thread
        (napari's progress); once written, the message names how many files and where.
        Returns whether the export started."""
        p = self.panel
        s = p.session
        if s is None or self.export_combo.count() == 0:
            p.say("export not available in this install", error=True)
            return False
        out = QFileDialog.getExistingDirectory(self, "Export to folder")
        if not out:
            return False
        fmt, unsigned = self.export_combo.currentText(), self.export_unsigned.isChecked()

        def work() -> list[Path]:
            return list(s.export(fmt, out, include_unsigned=unsigned))

        def written(files: list[Path]) -> None:
            self.export_label.setText("written: " + ", ".join(Path(f).name for f in files))
            p.say(f"exported {len(files)} file(s) to {out}")

        p.tasks.run(work, "Exporting", f"exporting {fmt} to {out}…", written)
        return True
