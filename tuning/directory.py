"""Claiming a study directory: a new study, or the same study resumed."""

import os

from kreg.tuning import ledger


class StudyConflictError(ValueError):
    """The directory holds another study (or files that are no study)."""


def claim(directory, description):
    """Creates the study directory or checks that it holds this study.

    Args:
        directory: the study directory.
        description: what identifies the study (JSON-ready dict).

    Raises:
        StudyConflictError: the directory holds a different study, or is not
            empty and holds no study. Nothing is written then.
    """
    found = ledger.read_study(directory)
    if found is None:
        # A temporary file is what a process killed while writing study.json leaves.
        leftovers = [n for n in os.listdir(directory) if not n.endswith(".tmp")] if os.path.isdir(directory) else []
        if leftovers:
            raise StudyConflictError(
                f"directory {directory!r} is not empty and holds no kreg study "
                f"(no {ledger.STUDY_FILE}); choose an empty or new directory"
            )
        ledger.write_study(directory, description)
        return
    differ = [k for k in sorted(set(found) | set(description)) if found.get(k) != description.get(k)]
    if differ:
        details = "; ".join(f"{k}: {found.get(k)!r} there, {description.get(k)!r} here" for k in differ)
        raise StudyConflictError(
            f"directory {directory!r} holds a different study ({details}); "
            "use another directory, or the same settings to resume it"
        )
