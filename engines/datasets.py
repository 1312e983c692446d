"""Readers for the public data sets used in evaluation (files a user downloads)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.data import ItemContent

YEAR = re.compile(r"\s*\((\d{4})\)\s*$")


@dataclass
class Events:
    """Raw events: parallel arrays of user ids, item ids, weights and Unix times."""

    users: np.ndarray
    items: np.ndarray
    weights: np.ndarray
    times: np.ndarray
    content: list[ItemContent]

    def __len__(self) -> int:
        return len(self.users)

    def take(self, mask: np.ndarray) -> Events:
        return Events(
            self.users[mask], self.items[mask], self.weights[mask], self.times[mask], self.content
        )


def _adjacency(path: Path) -> tuple[np.ndarray, np.ndarray]:
    users, items = [], []
    with path.open() as fh:
        for line in fh:
            parts = line.split()
            if len(parts) < 2:
                continue
            ids = [int(p) for p in parts[1:]]
            users += [int(parts[0])] * len(ids)
            items += ids
    return np.asarray(users, np.int64), np.asarray(items, np.int64)


def gowalla(directory: Path) -> tuple[Events, Events]:
    """The NGCF/LightGCN split: ``train.txt`` and ``test.txt``, one ``user item item ...``
    line per user. Implicit feedback, so every event weighs 1 and has no time."""
    out = []
    for name in ("train.txt", "test.txt"):
        users, items = _adjacency(directory / name)
        out.append(Events(users, items, np.ones(len(users), np.float32), np.zeros(len(users)), []))
    n_items = int(max(out[0].items.max(), out[1].items.max())) + 1
    content = [ItemContent(i) for i in range(n_items)]
    out[0].content = out[1].content = content
    return out[0], out[1]


@dataclass(frozen=True, slots=True)
class Movie:
    """One row of MovieLens ``movies.csv``, with the year split off the title and the
    free-text tags of ``tags.csv``."""

    id: str
    title: str
    year: int | None
    genres: tuple[str, ...]
    tags: tuple[str, ...]


def movielens_movies(directory: Path, max_tags: int = 50) -> list[Movie]:
    """``movies.csv`` (+ ``tags.csv``): the one MovieLens catalogue reader, used by
    ``recograph import movielens`` and by evaluation alike."""
    tags: dict[str, list[str]] = {}
    if (directory / "tags.csv").exists():
        with (directory / "tags.csv").open(newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                found = tags.setdefault(r["movieId"], [])
                tag = r["tag"].strip().lower()
                if tag and tag not in found and len(found) < max_tags:
                    found.append(tag)
    movies = []
    with (directory / "movies.csv").open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            title, year = r["title"].strip(), None
            if m := YEAR.search(title):
                year = int(m.group(1))
                title = title[: m.start()]
            genres = tuple(g for g in r["genres"].split("|") if g and g != "(no genres listed)")
            movies.append(
                Movie(r["movieId"], title, year, genres, tuple(tags.get(r["movieId"], [])))
            )
    return movies


def movielens_ratings(directory: Path) -> Iterator[dict[str, str]]:
    """``ratings.csv`` rows as read (``userId``, ``movieId``, ``rating``, ``timestamp``)."""
    with (directory / "ratings.csv").open(newline="", encoding="utf-8") as fh:
        yield from csv.DictReader(fh)


def movielens(directory: Path) -> Events:
    """MovieLens ratings as events weighted like the service's default ``rating`` type:
    rating - 2.5. Rows naming unknown movies are skipped."""
    content = [
        ItemContent(
            int(m.id),
            "movie",
            m.title,
            None,
            m.genres,
            m.tags,
            {"year": m.year} if m.year is not None else {},
        )
        for m in movielens_movies(directory)
    ]
    known = {c.item_id for c in content}
    users, items, weights, times = [], [], [], []
    for r in movielens_ratings(directory):
        if int(r["movieId"]) not in known:
            continue
        users.append(int(r["userId"]))
        items.append(int(r["movieId"]))
        weights.append(float(r["rating"]) - 2.5)
        times.append(float(r["timestamp"]))
    return Events(
        np.asarray(users, np.int64),
        np.asarray(items, np.int64),
        np.asarray(weights, np.float32),
        np.asarray(times, np.float64),
        content,
    )
