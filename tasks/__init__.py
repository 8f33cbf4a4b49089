"""The handbench task suite: one module per task, each exporting ``TASKS`` (its Task subclasses, one per version;
a single ``TASK`` is accepted too)."""
