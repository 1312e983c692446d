"""``recograph keys`` and ``recograph user-tokens``: who may call the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gql.cli.common import data_dir_option, with_store
from gql.server.cors import normalise_origin


@click.group()
def keys() -> None:
    """Create, list and revoke API keys (and with them, tenants)."""


@keys.command(name="create")
@data_dir_option
@click.option(
    "--tenant",
    default="default",
    show_default=True,
    help="Tenant of the key; created with default interaction types if new.",
)
@click.option("--name", required=True)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(["admin", "write", "read", "recommend"]),
)
@click.option(
    "--origin",
    "origins",
    multiple=True,
    help="An origin (https://shop.example) whose web pages may use the key; repeatable.",
)
def keys_create(
    data_dir: Path | None,
    tenant: str,
    name: str,
    scopes: tuple[str, ...],
    origins: tuple[str, ...],
) -> None:
    """Print a new key once; only its hash is stored."""
    try:
        allowed = [normalise_origin(o) for o in origins]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--origin") from None
    if not tenant or ":" in tenant:
        raise click.BadParameter("may not be empty or contain ':'", param_hint="--tenant")

    async def work(store: Any) -> str:
        await store.ensure_tenant(tenant)
        _, secret = await store.api_keys.create(tenant, name, list(scopes), allowed)
        return str(secret)

    click.echo(with_store(data_dir, work))


@keys.command(name="list")
@data_dir_option
@click.option("--tenant", default="default", show_default=True)
def keys_list(data_dir: Path | None, tenant: str) -> None:
    async def work(store: Any) -> list[Any]:
        return list(await store.api_keys.list(tenant))

    for k in with_store(data_dir, work):
        state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
        origins = f"  origins: {' '.join(k.allowed_origins)}" if k.allowed_origins else ""
        click.echo(f"{k.prefix}  {k.name}  {','.join(k.scopes)}  {state}{origins}")


@keys.command(name="revoke")
@data_dir_option
@click.option("--tenant", default="default", show_default=True)
@click.argument("prefix")
def keys_revoke(data_dir: Path | None, tenant: str, prefix: str) -> None:
    async def work(store: Any) -> bool:
        return bool(await store.revoke_api_key(tenant, prefix))

    if not with_store(data_dir, work):
        raise click.ClickException(f"no active key {prefix!r} in tenant {tenant!r}")
    click.echo(f"revoked {prefix}")


@click.group(name="user-tokens")
def user_tokens() -> None:
    """Signed user tokens that let a browser-safe `recommend` key act for one user."""


@user_tokens.command(name="create")
@data_dir_option
@click.option("--tenant", default="default", show_default=True)
@click.option("--user", "user_id", required=True, help="Your id of the user.")
@click.option("--ttl", default=3600, show_default=True, help="Seconds the token is valid.")
def user_tokens_create(data_dir: Path | None, tenant: str, user_id: str, ttl: int) -> None:
    """Print a token for USER (your backend usually mints them with userTokenCreate)."""
    from gql.server.auth import mint_user_token

    async def work(store: Any) -> str:
        return mint_user_token(await store.tenant_secret(tenant), user_id, ttl)[0]

    click.echo(with_store(data_dir, work))


@user_tokens.command(name="rotate-secret")
@data_dir_option
@click.option("--tenant", default="default", show_default=True)
def user_tokens_rotate(data_dir: Path | None, tenant: str) -> None:
    """Replace the tenant's signing secret: every token issued so far stops working
    (replicas notice within a minute)."""

    async def work(store: Any) -> None:
        await store.rotate_tenant_secret(tenant)

    with_store(data_dir, work)
    click.echo(f"rotated the user-token secret of {tenant}")
