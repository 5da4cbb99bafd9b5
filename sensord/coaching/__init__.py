"""Form-degradation coaching: per-step metrics in, alerts and form summaries out.

Modules
-------
detectors
    The streaming detectors: ``init_state``, ``step(params, state, steps, pain)``,
    ``run_offline``, ``bouts``.
params
    ``CoachParams``, every threshold (validated).
config
    ``load_config(path) -> RunnerConfig``: the runner's TOML file.
charts
    CUSUM / EWMA primitives and the CUSUM average run length.
activity
    Walk/run/still segmentation into bouts.
protocol
    Return-to-run interval plans (``parse_plan``) and ``compliance``.
pain
    ``parse_pain``: 0-10 pain scores.
synthetic
    A small synthetic step generator for tests and the evaluation fallback.

See ``docs/coaching.md`` for the method and its evaluation.
"""
