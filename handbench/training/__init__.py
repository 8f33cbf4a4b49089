"""The training pipeline every baseline shares: data windows, normalisers, the loop, checkpoints, policies.

Modules: ``data`` (canonical HDF5 -> in-memory demos, episode split, windows with edge padding),
``normalizer``, ``config`` (TrainConfig, presets), ``trainer`` (loop, EMA, resume, logs),
``checkpoint`` (one-file checkpoints, ``load_policy``), ``runtime`` (the Policy wrapper: observation
history, action queue, temporal ensembling) and ``timing`` (inference time per action).
"""
