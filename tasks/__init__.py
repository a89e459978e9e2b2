"""The queue side: Redis dispatch of micro-tasks and the RQ background jobs."""
