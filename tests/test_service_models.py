"""The services' tables enforce what their models promise (SQLSTATEs from the real server)."""

from __future__ import annotations

import psycopg
import pytest


@pytest.fixture
def game(gamedb, database):
    for schema in ("auth", "inventory"):
        assert gamedb("-x", f"schema={schema}", "upgrade", "head").code == 0
    return database


def sqlstate_of(database, statement, params=None):
    with pytest.raises(psycopg.Error) as caught:
        database.query(statement, params)
    return caught.value.sqlstate


ADD_USER = "INSERT INTO auth.users (login, email, password_hash) VALUES (%s, %s, 'x') RETURNING id"


def test_login_and_email_are_unique_regardless_of_case(game):
    game.query(ADD_USER, ("Alice", "alice@example.com"))

    assert sqlstate_of(game, ADD_USER, ("ALICE", "other@example.com")) == "23505"
    assert sqlstate_of(game, ADD_USER, ("bob", "Alice@Example.com")) == "23505"


def test_refresh_tokens_go_with_their_user(game):
    (user_id,) = game.query(ADD_USER, ("carol", "carol@example.com"))[0]
    game.query(
        "INSERT INTO auth.refresh_tokens (user_id, token_hash, expires_at) VALUES (%s, 'h1', now() + interval '1 day')",
        (user_id,),
    )

    game.query("DELETE FROM auth.users WHERE id = %s", (user_id,))

    assert game.query("SELECT count(*) FROM auth.refresh_tokens") == [(0,)]


def test_player_items_quantity_never_negative_and_one_row_per_owner_and_item(game):
    (item_id,) = game.query("INSERT INTO inventory.items (sku, name) VALUES ('sword', 'Sword') RETURNING id")[0]
    add = "INSERT INTO inventory.player_items (owner_user_id, item_id, quantity) VALUES (42, %s, %s)"
    game.query(add, (item_id, 3))

    assert sqlstate_of(game, add, (item_id, 1)) == "23505"
    assert sqlstate_of(game, "UPDATE inventory.player_items SET quantity = -1") == "23514"
    assert sqlstate_of(game, "INSERT INTO inventory.items (sku, name, rarity) VALUES ('x', 'X', 'mythic')") == "22P02"
