"""The function every stored revocation job names stays where stored jobs look for it."""

from __future__ import annotations

from apscheduler.util import ref_to_obj

from bot.scheduler import run_revocation_job, run_revocation_jobs
from bot.scheduling.jobs import BATCH_FUNC_REF
from bot.store.revocation_jobs import JOB_FUNC_REF, job_record


def test_the_stored_reference_imports_the_job_function() -> None:
    """``bot.scheduler:run_revocation_job`` (the text every job in Redis carries, and the
    one v1 wrote) resolves to the function the job store binds; the batch reference too."""
    assert JOB_FUNC_REF == "bot.scheduler:run_revocation_job"
    assert ref_to_obj(JOB_FUNC_REF) is run_revocation_job
    assert ref_to_obj(BATCH_FUNC_REF) is run_revocation_jobs
    assert f'"func":"{JOB_FUNC_REF}"' in job_record("g-abcdef", 1.0)


def test_the_lifecycle_jobs_references_import_their_functions() -> None:
    """Reminder and start jobs name their functions by stable text too (issue 13)."""
    from bot.lifecycle.jobs import run_reminder_job, run_start_job
    from bot.store.lifecycle_jobs import REMIND_FUNC_REF, START_FUNC_REF, lifecycle_record

    assert REMIND_FUNC_REF == "bot.lifecycle.jobs:run_reminder_job"
    assert START_FUNC_REF == "bot.lifecycle.jobs:run_start_job"
    assert ref_to_obj(REMIND_FUNC_REF) is run_reminder_job
    assert ref_to_obj(START_FUNC_REF) is run_start_job
    assert f'"func":"{START_FUNC_REF}"' in lifecycle_record("start", "g-abcdef", 1.0)
