"""The handbench task suite: one module per task, each exporting ``TASK`` (a Task subclass)."""
