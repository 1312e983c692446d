"""Service settings from `RECOGRAPH_*` environment variables (and DATABASE_URL, REDIS_URL)."""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("recograph"))


class Settings(BaseSettings):
    """Every knob of the service. Field docs feed the README configuration table."""

    model_config = SettingsConfigDict(env_prefix="RECOGRAPH_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("RECOGRAPH_DATABASE_URL", "DATABASE_URL"),
        description="PostgreSQL (with pgvector) URL. Unset: an embedded PostgreSQL in data_dir.",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("RECOGRAPH_REDIS_URL", "REDIS_URL"),
        description="Redis URL for caches, counters and pub/sub. Unset: in-process equivalents.",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where the embedded PostgreSQL keeps its files.",
    )
    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds.")
    workers: int | None = Field(
        default=None,
        ge=0,
        description="API worker processes of `recograph serve` (unset: one per core; 0: one "
        "process that also trains).",
    )
    port: int = Field(default=8000, description="Port the HTTP server binds.")
    max_page_size: int = Field(default=100, ge=1, description="Largest `first` of a connection.")
    max_batch_size: int = Field(
        default=20_000, ge=1, description="Most rows in one bulk mutation call."
    )
    max_body_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="Largest accepted request body, bytes."
    )
    max_query_depth: int = Field(default=12, ge=1, description="Deepest accepted GraphQL query.")
    max_aliases: int = Field(default=30, ge=1, description="Most aliases in one GraphQL query.")
    max_tokens: int = Field(default=4_000, ge=10, description="Most tokens in one GraphQL query.")
    max_query_length: int = Field(
        default=100_000, ge=100, description="Longest GraphQL document, characters."
    )
    max_query_cost: int = Field(
        default=20_000,
        ge=10,
        description="Most work one query may ask for: fields, multiplied by `first` of "
        "every list they sit in.",
    )
    max_subscriptions_per_connection: int = Field(
        default=20, ge=1, description="Most operations open at once on one WebSocket."
    )
    subscription_queue_size: int = Field(
        default=1000,
        ge=1,
        description="Messages a subscriber may fall behind by before its socket is closed "
        "(code 1013).",
    )
    max_subscriptions_per_key: int = Field(
        default=200,
        ge=1,
        description="Most WebSocket operations open at once per API key (per key and user "
        "for browser-safe `recommend` keys, which every visitor of a site shares).",
    )
    request_read_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A connection that sends no complete request (or body) within this "
        "time, or idles that long, is closed.",
    )
    max_id_length: int = Field(default=256, ge=1, description="Longest item/user id.")
    max_text_length: int = Field(
        default=100_000, ge=1, description="Longest item title or text, characters."
    )
    max_attributes_bytes: int = Field(
        default=64 * 1024, ge=16, description="Largest attributes/metadata object, JSON bytes."
    )
    future_tolerance_seconds: int = Field(
        default=3_600, ge=0, description="How far in the future an event timestamp may lie."
    )
    auto_create_items: bool = Field(
        default=False,
        description="Create unknown items met in interactions (else the row is rejected).",
    )
    run_migrations: bool = Field(default=True, description="Apply database migrations at start-up.")
    log_level: str = Field(default="INFO", description="Python logging level.")
    otel_tracing: bool = Field(
        default=False,
        description="OpenTelemetry spans for GraphQL operations and resolvers (extra `otel`; "
        "configure the exporter with the usual OTEL_* variables).",
    )
    json_logs: bool = Field(
        default=False, description="Log one JSON object per line, with request ids."
    )
    require_api_key: bool | None = Field(
        default=None,
        description="Require `Authorization: Bearer <key>`; unset: required unless the "
        "database is the embedded default.",
    )
    rate_limit_per_key: float = Field(
        default=50.0, ge=0, description="Requests per second per API key (0: no limit)."
    )
    rate_limit_per_tenant: float = Field(
        default=200.0, ge=0, description="Requests per second per tenant (0: no limit)."
    )
    rate_limit_burst_seconds: float = Field(
        default=2.0, gt=0, description="Bursts may use this many seconds of the rate at once."
    )
    auth_lookups_per_address: float = Field(
        default=20.0,
        ge=0,
        description="Lookups of API keys not in the key cache, per second per client "
        "address (limits key guessing; 0: no limit).",
    )
    cors_origins: str = Field(
        default="",
        description="Comma-separated origins (`https://shop.example`) whose web pages may "
        "call the API with any key; each key can allow more (`allowedOrigins`). `*`: any "
        "page. Empty: none, except per key.",
    )
    metrics_token: str | None = Field(
        default=None,
        description="If set, `/metrics` needs `Authorization: Bearer <this token>`.",
    )
    keep_model_versions: int = Field(
        default=3, ge=1, description="Model versions kept per algorithm (older ones are pruned)."
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow webhook URLs on loopback, private, link-local and other non-public "
        "addresses (a private network, tests). Off: such URLs are refused when registered and "
        "when delivered to (SSRF).",
    )
    webhook_max_attempts: int = Field(
        default=8,
        ge=1,
        description="Attempts of a webhook delivery before it is marked dead "
        "(`webhookDeliveryReplay` queues it again).",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Time limit of one webhook delivery attempt: connecting, sending and the "
        "response.",
    )
    webhook_backoff_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Base of the backoff between webhook attempts: after the n-th failure the "
        "next attempt waits a random time up to base × 2^(n−1) (full jitter).",
    )
    webhook_backoff_cap_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="Longest wait between two webhook attempts.",
    )
    webhook_retention_days: float = Field(
        default=30.0,
        ge=0,
        description="Delivered and dead webhook deliveries older than this are deleted from "
        "the log (hourly); 0 keeps them forever. Pending ones are never deleted.",
    )
    plugins: str | None = Field(
        default=None,
        description="Comma-separated plugins to load (module or entry-point names); unset: all.",
    )
    default_algorithms: str = Field(
        default="hybrid",
        description="Blend used when a request names none: `name:weight,...` or a preset.",
    )
    similar_algorithms: str = Field(
        default="item_knn:1,content:0.5,collaborative:0.5",
        description="Blend of `similarItems` when a request names none.",
    )
    plugin_config: str | None = Field(
        default=None,
        description="JSON (or the path of a JSON file) configuring plugins: "
        '`{"algorithms": {"collaborative": {"rank": 256}}, "embedders": {...}, '
        '"plugins": {"<plugin>": {...}}}`.',
    )
    embedder: str = Field(
        default="tfidf",
        description="Embedder for content vectors and search: `tfidf` (fitted on each "
        "tenant's catalogue), `hashing`, `http` or `sentence`.",
    )
    embedder_url: str | None = Field(
        default=None, description="Base URL of an OpenAI-compatible API (embedder `http`)."
    )
    embedder_key: str | None = Field(default=None, description="API key of `embedder_url`.")
    embedder_model: str | None = Field(default=None, description="Model name for `http`.")
    train_interval_seconds: float = Field(
        default=3600, ge=0, description="Background retraining period; 0 turns it off."
    )
    trainer: Literal["auto", "external"] = Field(
        default="auto",
        description="`auto`: `recograph serve` trains in a trainer process of its own (a "
        "one-process run trains in process); `external`: a dedicated `recograph trainer` "
        "does, and the API only hands it `modelTrain` jobs.",
    )
    train_in_process: bool = Field(
        default=True,
        description="Whether this process may train (set by `recograph serve` for its "
        "workers, which never do).",
    )
    train_wait_seconds: float = Field(
        default=900.0,
        gt=0,
        description="How long `modelTrain` waits for the trainer process to finish.",
    )
    train_on_start: bool = Field(
        default=True, description="Train at start-up when events exist but a model does not."
    )
    train_on_growth: float = Field(
        default=0.2,
        ge=0,
        description="Train a tenant when its first events arrive, and again when its events "
        "grew by this share since its models were trained (once the events pause); 0 turns "
        "it off.",
    )
    recommendation_cache_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How long a user's finished recommendations are kept (Redis, else in "
        "process). An event of the user, a catalogue change or a new model makes the next "
        "request compute afresh; other users' events (trending) show after this long. 0: off.",
    )
    recommendation_page_seconds: float = Field(
        default=1800.0,
        gt=0,
        description="How long a ranked list asked for with `cursor` "
        "is kept for its next pages (`recommendations(after:)`).",
    )
    impression_seconds: float = Field(
        default=86_400.0,
        gt=0,
        description="How long the items served to a user are remembered for `rotation` (from "
        "the last list served to them).",
    )
    online_history_size: int = Field(
        default=100,
        ge=0,
        le=10_000,
        description="With Redis, a user's whole history is kept there (and read instead of "
        "PostgreSQL) while it has at most this many events; 0: never.",
    )
    online_history_seconds: int = Field(
        default=3600,
        ge=1,
        description="How long a history kept in Redis lives from the read that stored it "
        "(events appended meanwhile keep that expiry).",
    )
    together_minutes: float = Field(
        default=60.0,
        gt=0,
        le=10_080,
        description="Events of one user this close in time count as used together "
        "(`boughtTogether`).",
    )
    trending_half_life_hours: float = Field(
        default=24.0,
        gt=0,
        description="Half-life of the online trending counters (the popularity that fills "
        "pages before a model exists).",
    )
    diversity: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Default strength of diversification (maximal marginal relevance over "
        "content vectors) of `recommendations`; a request's `diversity` overrides it.",
    )
    cold_item_share: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of each recommendation list (rounded) kept for the best cold items "
        "of the algorithms that score items by content: items with fewer than "
        "RECOGRAPH_COLD_ITEM_EVENTS events, which a blend never ranks on its own; a "
        "request's or scenario's `coldItems` overrides it. 0: off (it costs warm accuracy: "
        "docs/benchmarks.md).",
    )
    cold_item_events: int = Field(
        default=5,
        ge=1,
        le=1_000_000,
        description="Items with fewer training events than this are cold (see "
        "RECOGRAPH_COLD_ITEM_SHARE).",
    )
    training_threads: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Models the trainer fits at once (and blend members it refits at once); "
        "default: the number of cores. 1 keeps training to one core beside busy API workers.",
    )
    learn_blend_weights: bool = Field(
        default=True,
        description="After a full training, fit each preset's weights (e.g. `hybrid`) to the "
        "tenant's own events on a validation split; off: the preset's fixed weights.",
    )
    candidate_pool: int = Field(
        default=200, ge=10, description="Candidates each algorithm proposes before blending."
    )
    calibration: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="Default strength (0..1) of calibrated re-ranking: how closely a list's "
        "categories follow the user's history (request argument `calibration`); 0 turns it "
        "off. 0.2 cost no NDCG on MovieLens and cut miscalibration by a fifth.",
    )

    @cached_property
    def embedded(self) -> bool:
        return not self.database_url

    def worker_count(self) -> int:
        return self.workers if self.workers is not None else (os.cpu_count() or 1)

    def training_thread_count(self) -> int:
        return self.training_threads or (os.cpu_count() or 1)

    def trains_here(self) -> bool:
        return self.train_in_process and self.trainer == "auto"

    def keys_required(self) -> bool:
        return self.require_api_key if self.require_api_key is not None else not self.embedded

    def default_weights(self) -> dict[str, float]:
        """``RECOGRAPH_DEFAULT_ALGORITHMS`` parsed: ``hybrid`` or ``collaborative:1,content:2``."""
        return parse_weights(self.default_algorithms)

    def similar_weights(self) -> dict[str, float]:
        return parse_weights(self.similar_algorithms)

    def plugin_config_data(self) -> dict[str, Any]:
        """``RECOGRAPH_PLUGIN_CONFIG`` as a dict (inline JSON, or a file holding it)."""
        raw = (self.plugin_config or "").strip()
        if not raw:
            return {}
        text = raw if raw.startswith("{") else Path(raw).expanduser().read_text()
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("RECOGRAPH_PLUGIN_CONFIG must be a JSON object")
        return data

    def plugin_names(self) -> list[str] | None:
        if not self.plugins:
            return None
        return [p.strip() for p in self.plugins.split(",") if p.strip()]


def parse_weights(spec: str) -> dict[str, float]:
    """``"hybrid"`` or ``"collaborative:1,content:0.5"`` as name -> weight."""
    weights = {}
    for part in spec.split(","):
        name, _, weight = part.strip().partition(":")
        if name:
            weights[name] = float(weight) if weight else 1.0
    return weights


def settings_table() -> str:
    """The configuration table of the README, generated from the fields above."""
    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        env = f"RECOGRAPH_{name.upper()}"
        if name in ("database_url", "redis_url"):
            env += f" (or {name.upper()})"
        default = field.default if field.default_factory is None else "user data dir"
        rows.append(f"| `{env}` | `{default}` | {field.description} |")
    return "\n".join(rows)
