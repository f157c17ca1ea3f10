"""owstack.security: defences for a self-hosted agent stack.

- `config_scan`: configuration that executes or bypasses trust in a repository's agent configs;
- `model_scan`: GGUF, pickle and safetensors files (templates rendered only in the sandbox, see `templates`);
- `egress`: SSRF-safe fetching (policy checks, DNS pinning, capped responses);
- `guard`: control-token neutralisation and prompt-injection detection.
"""
