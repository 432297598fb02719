"""Typed workbench errors: one-line cause plus a hint, with a stable code.

Every failure a user can cause (bad config, bad file, unknown id) is raised as a
WorkbenchError subclass so the CLI can print one line and exit 2, and the app can
show one line without a traceback.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class. ``code`` is stable (tests and UIs key on it); ``hint`` says what to do."""

    code = "workbench_error"

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = f"{self.code}: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return " ".join(text.split())


class ConfigError(WorkbenchError):
    code = "bad_config"


class UnknownIdError(WorkbenchError):
    code = "unknown_id"


class DataError(WorkbenchError):
    code = "bad_data"


class InputTooLargeError(DataError):
    code = "input_too_large"


class WeightsError(WorkbenchError):
    code = "bad_weights"


class UnsupportedModelError(WorkbenchError):
    code = "unsupported_model"


class ZooNotBuiltError(WorkbenchError):
    code = "zoo_not_built"


class Cancelled(WorkbenchError):
    """Raised by RunContext.check_cancel(); a cancelled job is not a failed job."""

    code = "cancelled"


class ComputeError(WorkbenchError):
    code = "compute_error"


class OutputError(WorkbenchError):
    """The place a result would be written cannot take it (a file, a link, unwritable, occupied)."""

    code = "bad_output"


class FolderBusyError(OutputError):
    code = "folder_busy"


class IncompleteResultError(DataError):
    code = "incomplete_result"
