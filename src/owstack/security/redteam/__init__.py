"""`owstack redteam`: attack a running gateway (any layer, any backend) and report per-probe hit rates.

- `probes`: owstack's own probes for its surfaces: control-token smuggling, tool-result injection,
  markdown exfiltration, residency escape;
- `garak_run`: garak (the optional `redteam` extra) driven against the gateway's OpenAI-compatible
  endpoint, its report read back into the same shape;
- `report`: JSON and HTML reports with Wilson intervals, the comparison of two runs, CI thresholds.
"""
