"""The configuration file's schema: strict (`extra="forbid"`), immutable, validated once at load.

Each feature package owns the model of its own section (`metering/config.py`, `compliance/config.py`,
...); this module assembles them. References between sections (layers naming backends, fallbacks, tenants'
layers, MCP servers and tenants) are checked in one place, `config/references.py`, once the file has parsed.
"""

from __future__ import annotations

import re
from ipaddress import ip_network
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from owstack.api.limits import ServerLimits
from owstack.compliance.config import AuditSection
from owstack.config.base import DatabaseURL, FilePath, Section
from owstack.economics.config import EconomicsSection
from owstack.efficiency.config import ReasoningSection
from owstack.finetune.config import AdaptersSection
from owstack.mcp.config import McpSection
from owstack.metering.config import MeteringSection
from owstack.protocols.responses.config import ResponsesSection
from owstack.routing.config import Policy, PrefixSection, SharedSection
from owstack.security.config import SecuritySection
from owstack.tenancy.config import KeysSection, TenantSection
from owstack.tenancy.limits.config import LimitsSection, check_redis_url
from owstack.ui.config import UiSection

Engine = Literal["llamacpp", "vllm", "sglang", "ollama", "llamacpp-server", "tgi", "tei", "openai"]
HTTP_ENGINES: frozenset[str] = frozenset({"vllm", "sglang", "ollama", "llamacpp-server", "tgi", "tei", "openai"})
#: the OpenAI endpoints a backend can serve: chat completions, legacy completions, embeddings
Endpoint = Literal["chat", "completions", "embeddings"]
#: what each engine serves unless the backend says otherwise (`endpoints:`): an embedding model on vLLM or
#: Ollama serves embeddings only, so declare it; TEI serves embeddings and nothing else
DEFAULT_ENDPOINTS: dict[str, tuple[str, ...]] = {
    "llamacpp": ("chat",),
    "tei": ("embeddings",),
}
CHAT_ENGINE_ENDPOINTS: tuple[str, ...] = ("chat", "completions")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_SECRET_REF = re.compile(r"^env\.[A-Za-z_][A-Za-z0-9_]*$")


class ServerSection(Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    max_body_bytes: Annotated[int, Field(ge=1024)] = 16 * 1024 * 1024
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    #: one log line per request (id, tenant, layer, backend, status, latency, tokens); never content
    access_log: bool = False
    #: also log raw prompts and completions (off by default: they may hold personal data)
    log_content: bool = False
    #: origins allowed to call the gateway from a browser (CORS); empty: no CORS headers at all
    cors_allow_origins: tuple[str, ...] = ()
    #: Host names accepted besides the listen address and loopback names, in open mode (DNS rebinding)
    allowed_hosts: tuple[str, ...] = ()
    #: connection limits, header and idle timeouts, the file-descriptor reserve (owstack.api.limits)
    limits: ServerLimits = ServerLimits()
    #: on SIGTERM, /readyz answers 503 for this long before the listener closes, so that a load balancer
    #: (or Kubernetes) stops sending new requests first; 0: close at once (docs/deployment.md)
    drain_delay_s: Annotated[float, Field(ge=0, le=600)] = 0.0
    #: then in-flight requests, streams included, get this long to finish (also: the previous
    #: configuration's requests after a reload on SIGHUP)
    shutdown_grace_s: Annotated[float, Field(gt=0, le=3600)] = 25.0
    #: a second listener serving only GET /healthz, /readyz and /metrics (the same answers), outside the
    #: public listener's connection caps, for probes and scrapers (owstack.api.probes); null: none
    probe_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    #: its address (null: `host`, the main listener's)
    probe_host: str | None = None
    #: addresses or networks (CIDR) of the proxies in front of the gateway: X-Forwarded-For is honoured from
    #: them only, and so is a PROXY protocol header; empty: from no one (the client is the TCP peer)
    trusted_proxies: tuple[str, ...] = ()
    #: connections from a trusted proxy begin with a PROXY protocol header (v1 or v2, HAProxy's spec), which
    #: gives the real client's address to the per-client cap, the audit log and the logs (owstack.api.proxy)
    proxy_protocol: bool = False

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for item in v:
            try:
                ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network (such as 10.0.0.0/8)") from None
        return v

    @model_validator(mode="after")
    def _proxy_protocol_needs_proxies(self) -> ServerSection:
        if self.proxy_protocol and not self.trusted_proxies:
            raise ValueError("proxy_protocol: true needs server.trusted_proxies (the proxies that send the header)")
        return self


class StorageSection(Section):
    #: a relative SQLite file is relative to the config file's folder (or the data directory without one)
    url: DatabaseURL = "sqlite:///owstack.db"


class Timeouts(Section):
    connect_s: Annotated[float, Field(gt=0)] = 5.0
    #: longest silence allowed between two bytes from the upstream (time to first token included)
    read_s: Annotated[float, Field(gt=0)] = 120.0


class BackendSection(Section):
    engine: Engine
    #: the model id sent upstream and listed in /v1/models; for `llamacpp`, a catalog id
    model: str
    url: str | None = None
    #: a secret reference, `env.NAME`; never the key itself
    api_key: str | None = None
    jurisdiction: str = "local"
    proprietary: bool = False
    #: hardware profile for the cost model, e.g. `8xH100` (see `owstack plan --help`)
    hardware: str | None = None
    #: the catalog model this backend serves, when `model` is not itself a catalog id
    catalog: str | None = None
    timeouts: Timeouts = Timeouts()
    max_connections: Annotated[int, Field(ge=1, le=10_000)] = 256
    health_check: bool = True
    #: the OpenAI endpoints this backend serves (default by engine: chat and completions; TEI: embeddings)
    endpoints: tuple[Endpoint, ...] | None = None
    #: the served model's tokenizer (a folder with tokenizer.json or tokenizer_config.json, or a .gguf): the
    #: guard then makes every added token inert, a fine-tune's own included (else: the family's list)
    tokenizer: FilePath | None = None
    # embedded (`llamacpp`) engine
    model_path: FilePath | None = None
    sha256: str | None = None
    n_ctx: Annotated[int, Field(ge=256)] = 4096
    n_threads: Annotated[int, Field(ge=1)] | None = None
    max_queue: Annotated[int, Field(ge=1)] = 64
    max_tokens_default: Annotated[int, Field(ge=1)] = 512

    @field_validator("api_key")
    @classmethod
    def _secret_is_reference(cls, v: str | None) -> str | None:
        if v is not None and not _SECRET_REF.match(v):
            raise ValueError("must be a reference like env.OPENAI_API_KEY, never the key itself")
        return v

    @field_validator("jurisdiction")
    @classmethod
    def _jurisdiction_label(cls, v: str) -> str:
        if not re.match(r"^[a-z]{2,8}(-[a-z0-9]{1,8})*$", v):
            raise ValueError("a lowercase label such as eu, us, local or eu-fr")
        return v

    @model_validator(mode="after")
    def _url_matches_engine(self) -> BackendSection:
        if self.engine in HTTP_ENGINES and not self.url:
            raise ValueError(f"engine {self.engine!r} needs a `url` (its OpenAI-compatible base, ending in /v1)")
        if self.engine == "llamacpp" and self.url:
            raise ValueError("engine 'llamacpp' is embedded and takes no `url`; use llamacpp-server for a URL")
        if self.engine == "llamacpp" and self.endpoints not in (None, ("chat",)):
            raise ValueError("engine 'llamacpp' (embedded) serves chat only: set `endpoints: [chat]` or leave it out")
        return self

    @property
    def serves(self) -> tuple[str, ...]:
        """The endpoints this backend serves (declared, or its engine's default)."""
        if self.endpoints is not None:
            return self.endpoints
        return DEFAULT_ENDPOINTS.get(self.engine, CHAT_ENGINE_ENDPOINTS)


class LayerSection(Section):
    #: replicas, balanced by fewest outstanding requests among the healthy ones
    backends: tuple[str, ...]
    #: tried in order once every replica has failed (before the first byte reaches the client)
    fallback: tuple[str, ...] = ()
    #: how requests are spread over the replicas: least-outstanding, round-robin, or prefix (the replica
    #: that served the longest matching prompt prefix, bounded by load; routing/prefix.py)
    routing: Policy = "least-outstanding"


class AutoRules(Section):
    """How `model: auto` picks a layer. The first matching rule wins, in this order."""

    images: str = "multimodal"
    tools: str = "coding"
    code: str = "coding"
    default: str = "edge"
    #: a request whose last user message matches any of these is treated as code
    code_patterns: tuple[str, ...] = (
        r"```",
        r"\b(def|class|import|return|function|const|let|var|fn|impl|struct|public|private|#include)\b[^\n]*[({:;=]",
        r"\b(traceback|stack ?trace|segfault|compile error|syntax error|unit test|regex|sql query)\b",
        r"\b(python|javascript|typescript|golang|rust|java|c\+\+|bash|sql|kotlin|swift)\b.*\b(code|function|script|bug)\b",
    )

    @field_validator("code_patterns")
    @classmethod
    def _patterns(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in v:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r}: {exc}") from None
        return v


class BreakerSection(Section):
    failure_threshold: Annotated[int, Field(ge=1)] = 5
    reset_s: Annotated[float, Field(gt=0)] = 30.0


class HealthSection(Section):
    interval_s: Annotated[float, Field(gt=0)] = 10.0
    timeout_s: Annotated[float, Field(gt=0)] = 2.0
    unhealthy_after: Annotated[int, Field(ge=1)] = 2


class RoutingSection(Section):
    auto: AutoRules = AutoRules()
    #: total attempts per request across replicas and fallbacks
    max_attempts: Annotated[int, Field(ge=1, le=16)] = 3
    breaker: BreakerSection = BreakerSection()
    health: HealthSection = HealthSection()
    #: prefix-cache-aware routing (layers with `routing: prefix`)
    prefix: PrefixSection = PrefixSection()
    #: what gateway instances share through Redis (`redis:`): breaker, health, load, prefix decisions
    shared: SharedSection = SharedSection()


class ConfigFile(Section):
    """The whole file. Every section is optional; see `owstack.config.load` for the embedded default."""

    server: ServerSection = ServerSection()
    storage: StorageSection = StorageSection()
    #: redis://host:6379/0 to share rate caps and budgets between processes and hosts
    redis: str | None = None
    limits: LimitsSection = LimitsSection()
    backends: dict[str, BackendSection] = {}
    layers: dict[str, LayerSection] = {}
    routing: RoutingSection = RoutingSection()
    tenants: dict[str, TenantSection] = {}
    #: how API keys are cached, and how long they keep working while the key store is unreachable
    keys: KeysSection = KeysSection()
    #: proprietary API model to price each layer against, e.g. {coding: gpt-5.4}
    counterfactual: dict[str, str] = {}
    metering: MeteringSection = MeteringSection()
    audit: AuditSection = AuditSection()
    reasoning: ReasoningSection = ReasoningSection()
    #: the Responses API's stored responses (retention, residency of the store)
    responses: ResponsesSection = ResponsesSection()
    #: fine-tuned adapters: the registry folder and request aliases (owstack.finetune.config)
    adapters: AdaptersSection = AdaptersSection()
    security: SecuritySection = SecuritySection()
    mcp: McpSection = McpSection()
    #: site costs (power price, PUE), hardware and API price overrides for the cost model
    economics: EconomicsSection = EconomicsSection()
    #: the console at /ui (and `owstack console`)
    ui: UiSection = UiSection()

    @field_validator("redis")
    @classmethod
    def _redis(cls, v: str | None) -> str | None:
        return None if v is None else check_redis_url(v)

    @field_validator("backends", "tenants")
    @classmethod
    def _names(cls, v: dict[str, object]) -> dict[str, object]:
        for name in v:
            if not _NAME.match(name):
                raise ValueError(f"name {name!r} must be 1-64 of letters, digits, '_', '.', ':', '-'")
        return v
