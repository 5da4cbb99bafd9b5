"""Pure streaming gait estimators."""
