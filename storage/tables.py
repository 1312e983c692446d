"""The database tables. Every row carries its tenant; internal integer ids keep joins and
model matrices compact while clients keep their own string ids (``external_id``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy import (
    text as sql,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlmodel import Field, SQLModel

DEFAULT_TENANT = "default"
#: 244 random bits as 64 hex digits, made by PostgreSQL (gen_random_uuid is strong random)
RANDOM_SECRET = "replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')"


def _now_column() -> Column[Any]:
    return Column(DateTime(timezone=True), nullable=False, server_default=func.now())


def _tenant_column() -> Column[Any]:
    return Column(Text, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=False)


def _pk() -> Column[Any]:
    return Column(BigInteger, Identity(always=False), primary_key=True)


class Tenant(SQLModel, table=True):
    __tablename__ = "tenants"

    id: str = Field(sa_column=Column(Text, primary_key=True))
    name: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=_now_column())
    #: signs user tokens (see gql.server.auth); random per tenant
    token_secret: str | None = Field(
        default=None,
        sa_column=Column(
            Text,
            nullable=False,
            server_default=sql(RANDOM_SECRET),
        ),
    )


class Item(SQLModel, table=True):
    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_id", name="uq_items_tenant_external"),
        Index("ix_items_categories", "categories", postgresql_using="gin"),
        Index("ix_items_tags", "tags", postgresql_using="gin"),
        Index(
            "ix_items_attributes",
            "attributes",
            postgresql_using="gin",
            postgresql_ops={"attributes": "jsonb_path_ops"},
        ),
        Index("ix_items_tenant_type_id", "tenant_id", "entity_type", "id"),
    )

    id: int | None = Field(default=None, sa_column=_pk())
    tenant_id: str = Field(sa_column=_tenant_column())
    external_id: str = Field(sa_column=Column(Text, nullable=False))
    entity_type: str = Field(sa_column=Column(Text, nullable=False, server_default="item"))
    title: str | None = Field(default=None, sa_column=Column(Text))
    text: str | None = Field(default=None, sa_column=Column(Text))
    categories: list[str] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(Text), nullable=False, server_default=sql("'{}'")),
    )
    tags: list[str] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(Text), nullable=False, server_default=sql("'{}'")),
    )
    attributes: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSONB, nullable=False, server_default=sql("'{}'::jsonb")),
    )
    hidden: bool = Field(default=False, sa_column_kwargs={"server_default": sql("false")})
    created_at: datetime | None = Field(default=None, sa_column=_now_column())
    updated_at: datetime | None = Field(default=None, sa_column=_now_column())


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_id", name="uq_users_tenant_external"),
    )

    id: int | None = Field(default=None, sa_column=_pk())
    tenant_id: str = Field(sa_column=_tenant_column())
    external_id: str = Field(sa_column=Column(Text, nullable=False))
    attributes: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSONB, nullable=False, server_default=sql("'{}'::jsonb")),
    )
    created_at: datetime | None = Field(default=None, sa_column=_now_column())
    updated_at: datetime | None = Field(default=None, sa_column=_now_column())


class InteractionType(SQLModel, table=True):
    """How much an event of a kind says about a user's taste. ``value_based`` types (ratings)
    weigh ``weight * (value - neutral_value)``, so low ratings count against an item."""

    __tablename__ = "interaction_types"

    tenant_id: str = Field(
        sa_column=Column(Text, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    )
    name: str = Field(sa_column=Column(Text, primary_key=True))
    weight: float = Field(nullable=False)
    value_based: bool = Field(default=False, sa_column_kwargs={"server_default": sql("false")})
    neutral_value: float = Field(default=0.0, sa_column_kwargs={"server_default": sql("0")})
    description: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: datetime | None = Field(default=None, sa_column=_now_column())


class Interaction(SQLModel, table=True):
    __tablename__ = "interactions"
    __table_args__ = (
        Index("ix_interactions_user_time", "user_id", "occurred_at", "id"),
        Index("ix_interactions_item", "item_id"),
        Index("ix_interactions_tenant_time", "tenant_id", "occurred_at"),
        Index(
            "ix_interactions_recommendation",
            "tenant_id",
            "recommendation_id",
            postgresql_where=sql("recommendation_id IS NOT NULL"),
            postgresql_ops={"recommendation_id": "text_pattern_ops"},
        ),
        Index(
            "uq_interactions_idempotency",
            "tenant_id",
            "idempotency_key",
            unique=True,
            postgresql_where=sql("idempotency_key IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, sa_column=_pk())
    tenant_id: str = Field(sa_column=_tenant_column())
    user_id: int = Field(
        sa_column=Column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    item_id: int = Field(
        sa_column=Column(BigInteger, ForeignKey("items.id", ondelete="CASCADE"), nullable=False)
    )
    type: str = Field(sa_column=Column(Text, nullable=False))
    weight: float = Field(nullable=False)
    value: float | None = Field(default=None)
    occurred_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    metadata_: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column("metadata", JSONB, nullable=False, server_default=sql("'{}'::jsonb")),
    )
    idempotency_key: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime | None = Field(default=None, sa_column=_now_column())
    #: the served list the event answers (attribution of experiments)
    recommendation_id: str | None = Field(default=None, sa_column=Column(Text))


class ItemVector(SQLModel, table=True):
    """One embedding of an item in a named vector space (e.g. ``content``, ``input``).
    Each space gets its own partial HNSW index over ``embedding::vector(dim)``."""

    __tablename__ = "item_vectors"
    __table_args__ = (Index("ix_item_vectors_tenant_space", "tenant_id", "space"),)

    item_id: int = Field(
        sa_column=Column(BigInteger, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    )
    space: str = Field(sa_column=Column(Text, primary_key=True))
    tenant_id: str = Field(sa_column=_tenant_column())
    embedding: Any = Field(sa_column=Column(Vector(), nullable=False))
    updated_at: datetime | None = Field(default=None, sa_column=_now_column())


class VectorSpace(SQLModel, table=True):
    """The dimension of each tenant's vector space (each tenant fixes its own)."""

    __tablename__ = "vector_spaces"

    tenant_id: str = Field(
        sa_column=Column(Text, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    )
    name: str = Field(sa_column=Column(Text, primary_key=True))
    dim: int = Field(nullable=False)
    created_at: datetime | None = Field(default=None, sa_column=_now_column())
    #: when its vectors last changed: its index is built once writes pause (migration 0013)
    written_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class ModelArtifact(SQLModel, table=True):
    __tablename__ = "model_artifacts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "algorithm", "version", name="uq_model_artifact_version"),
    )

    id: int | None = Field(default=None, sa_column=_pk())
    tenant_id: str = Field(sa_column=_tenant_column())
    algorithm: str = Field(sa_column=Column(Text, nullable=False))
    version: int = Field(nullable=False)
    params: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSONB, nullable=False, server_default=sql("'{}'::jsonb")),
    )
    metrics: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSONB, nullable=False, server_default=sql("'{}'::jsonb")),
    )
    blob: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=_now_column())


class TrainingJob(SQLModel, table=True):
    """A training asked for through the API, carried out by the trainer process (API
    workers never train); the requester polls its row for the result."""

    __tablename__ = "training_jobs"
    __table_args__ = (Index("ix_training_jobs_pending", "status", "id"),)

    id: int | None = Field(default=None, sa_column=_pk())
    tenant_id: str = Field(sa_column=_tenant_column())
    algorithms: list[str] | None = Field(default=None, sa_column=Column(ARRAY(Text)))
    configs: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSONB, nullable=False, server_default=sql("'{}'::jsonb")),
    )
    status: str = Field(sa_column=Column(Text, nullable=False, server_default="pending"))
    result: list[Any] | None = Field(default=None, sa_column=Column(JSONB))
    error_code: str | None = Field(default=None, sa_column=Column(Text))
    error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime | None = Field(default=None, sa_column=_now_column())
    started_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    finished_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


metadata = SQLModel.metadata

DEFAULT_INTERACTION_TYPES: tuple[tuple[str, float, bool, float], ...] = (
    # name, weight, value_based, neutral_value
    ("view", 1.0, False, 0.0),
    ("click", 2.0, False, 0.0),
    ("add_to_cart", 5.0, False, 0.0),
    ("purchase", 10.0, False, 0.0),
    ("like", 3.0, False, 0.0),
    ("dislike", -3.0, False, 0.0),
    ("rating", 1.0, True, 2.5),
)


class ApiKey(SQLModel, table=True):
    """An API key: only its SHA-256 is stored; the tenant of a request comes from here."""

    __tablename__ = "api_keys"

    id: int | None = Field(default=None, sa_column=_pk())
    tenant_id: str = Field(sa_column=_tenant_column())
    name: str = Field(sa_column=Column(Text, nullable=False))
    prefix: str = Field(sa_column=Column(Text, nullable=False))
    key_hash: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    scopes: list[str] = Field(sa_column=Column(ARRAY(Text), nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=_now_column())
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    #: web origins (``https://shop.example``) whose pages may call the API with this key
    allowed_origins: list[str] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(Text), nullable=False, server_default=sql("'{}'")),
    )


class Webhook(SQLModel, table=True):
    """An endpoint of a tenant that receives signed POSTs for the event kinds it names."""

    __tablename__ = "webhooks"
    __table_args__ = (Index("ix_webhooks_tenant", "tenant_id", "id"),)

    id: int | None = Field(default=None, sa_column=_pk())
    tenant_id: str = Field(sa_column=_tenant_column())
    url: str = Field(sa_column=Column(Text, nullable=False))
    #: ``events.recorded``, ``model.trained``, ``recommendations.changed``
    kinds: list[str] = Field(sa_column=Column(ARRAY(Text), nullable=False))
    #: signs every delivery (HMAC-SHA256); shown once, at creation
    secret: str = Field(sa_column=Column(Text, nullable=False))
    #: the users whose ``recommendations.changed`` this webhook receives
    watch_user_ids: list[str] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(Text), nullable=False, server_default=sql("'{}'")),
    )
    active: bool = Field(default=True, sa_column_kwargs={"server_default": sql("true")})
    description: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime | None = Field(default=None, sa_column=_now_column())
    updated_at: datetime | None = Field(default=None, sa_column=_now_column())


class WebhookDelivery(SQLModel, table=True):
    """The outbox: one message for one webhook, written in the transaction of the change it
    reports, then sent (and retried) by the delivery worker of any API process."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            "id",
            postgresql_where=sql("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
        Index("ix_webhook_deliveries_tenant", "tenant_id", "id"),
    )

    id: int | None = Field(default=None, sa_column=_pk())
    tenant_id: str = Field(sa_column=_tenant_column())
    webhook_id: int = Field(
        sa_column=Column(BigInteger, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False)
    )
    kind: str = Field(sa_column=Column(Text, nullable=False))
    payload: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    #: ``pending``, ``delivered`` or ``dead``
    status: str = Field(sa_column=Column(Text, nullable=False, server_default="pending"))
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": sql("0")})
    next_attempt_at: datetime | None = Field(default=None, sa_column=_now_column())
    last_status: int | None = Field(default=None)
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime | None = Field(default=None, sa_column=_now_column())
    delivered_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class Scenario(SQLModel, table=True):
    """One version of a named placement preset; the newest version is the scenario, a
    ``definition`` of null marks it deleted."""

    __tablename__ = "scenarios"

    tenant_id: str = Field(
        sa_column=Column(
            Text, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True, nullable=False
        )
    )
    name: str = Field(sa_column=Column(Text, primary_key=True, nullable=False))
    version: int = Field(sa_column=Column(Integer, primary_key=True, nullable=False))
    definition: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    description: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime | None = Field(default=None, sa_column=_now_column())


class Experiment(SQLModel, table=True):
    """An A/B test of scenarios for one placement (``scenario``): ``variants`` is a list
    of ``{name, scenario, share}``; users are split by a stable hash of id and user."""

    __tablename__ = "experiments"
    __table_args__ = (Index("ix_experiments_tenant", "tenant_id", "id"),)

    id: int | None = Field(default=None, sa_column=_pk())
    tenant_id: str = Field(sa_column=_tenant_column())
    name: str = Field(sa_column=Column(Text, nullable=False))
    scenario: str = Field(sa_column=Column(Text, nullable=False))
    metric: str = Field(sa_column=Column(Text, nullable=False))
    #: ``draft``, ``running`` or ``stopped``
    status: str = Field(sa_column=Column(Text, nullable=False, server_default="draft"))
    variants: list[dict[str, Any]] = Field(sa_column=Column(JSONB, nullable=False))
    click_types: list[str] = Field(sa_column=Column(ARRAY(Text), nullable=False))
    conversion_types: list[str] = Field(sa_column=Column(ARRAY(Text), nullable=False))
    winner: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime | None = Field(default=None, sa_column=_now_column())
    started_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    stopped_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    #: the key signing its recommendation ids (migration 0012)
    secret: str = Field(
        default="", sa_column=Column(Text, nullable=False, server_default=sql(RANDOM_SECRET))
    )


class ExperimentExposure(SQLModel, table=True):
    """Lists served by each variant (counted in each process, added here every second)."""

    __tablename__ = "experiment_exposures"

    tenant_id: str = Field(
        sa_column=Column(
            Text, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True, nullable=False
        )
    )
    experiment_id: int = Field(
        sa_column=Column(
            BigInteger,
            ForeignKey("experiments.id", ondelete="CASCADE"),
            primary_key=True,
            nullable=False,
        )
    )
    variant: int = Field(sa_column=Column(Integer, primary_key=True, nullable=False))
    exposures: int = Field(sa_column=Column(BigInteger, nullable=False, server_default=sql("0")))


def table_of(model: type[SQLModel]) -> Table:
    """The SQLAlchemy table of a model (SQLModel does not type ``__table__``)."""
    return cast(Table, vars(model)["__table__"])


TENANTS = table_of(Tenant)
ITEMS = table_of(Item)
USERS = table_of(User)
INTERACTIONS = table_of(Interaction)
INTERACTION_TYPES = table_of(InteractionType)
ITEM_VECTORS = table_of(ItemVector)
VECTOR_SPACES = table_of(VectorSpace)
MODEL_ARTIFACTS = table_of(ModelArtifact)
API_KEYS = table_of(ApiKey)
TRAINING_JOBS = table_of(TrainingJob)


class WatchedList(SQLModel, table=True):
    """The list last seen for a user some webhook watches (``recommendations.changed``)."""

    __tablename__ = "watched_lists"

    tenant_id: str = Field(
        sa_column=Column(
            Text, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True, nullable=False
        )
    )
    user_id: str = Field(sa_column=Column(Text, primary_key=True, nullable=False))
    item_ids: list[str] = Field(sa_column=Column(ARRAY(Text), nullable=False))
    updated_at: datetime | None = Field(default=None, sa_column=_now_column())


WEBHOOKS = table_of(Webhook)
WEBHOOK_DELIVERIES = table_of(WebhookDelivery)
WATCHED_LISTS = table_of(WatchedList)
SCENARIOS = table_of(Scenario)
EXPERIMENTS = table_of(Experiment)
EXPERIMENT_EXPOSURES = table_of(ExperimentExposure)

# Search: a generated full-text document (title A, tags and categories B, text C) and
# trigrams of titles (migration 0007). Computed columns are never read back into records.
ITEMS.append_column(
    Column(
        "search_doc",
        TSVECTOR,
        Computed(
            "setweight(to_tsvector('simple'::regconfig, coalesce(title, '')), 'A') || "
            "setweight(to_tsvector('simple'::regconfig, "
            "recograph_join_words(tags || categories)), 'B') || "
            "setweight(to_tsvector('simple'::regconfig, coalesce(text, '')), 'C')",
            persisted=True,
        ),
    )
)
Index("ix_items_search_doc", ITEMS.c.search_doc, postgresql_using="gin")
Index(
    "ix_items_title_trgm",
    ITEMS.c.title,
    postgresql_using="gin",
    postgresql_ops={"title": "gin_trgm_ops"},
)
