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
