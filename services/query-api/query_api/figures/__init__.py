"""Pure computations over figures already read (no I/O): forecasts, KPI ratios, scheme lift, field figures."""
