"""Pure domain code: no Redis, Slack, scheduler or clock reads. Time comes in as ``now``."""
