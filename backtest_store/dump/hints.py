"""What a dump says about directory names joined with `_`, and the database look-ups that settle the rest.

The only database I/O of the dump code lives here: `Hints` asks whether a context already exists.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..models import (
    Item,
    RecentItem,
    RiskItem,
    ScheduleItem,
    SessionItem,
    SignalItem,
    StorageItem,
    StrategyItem,
)

if TYPE_CHECKING:
    from ..store import Store

from .names import (
    MAX_CANDIDATES,
    MAX_DB_CANDIDATES,
    MAX_HINTS,
    Skip,
    _triple_of,
    splits,
)

# -- what the dump says about names joined with `_` -------------------------------------------------------------

# The shapes of joined directory names, as the context fields they join, in order.
TRIPLE = ("symbol", "strategyName", "exchangeName")
FRAMED = (*TRIPLE, "frameName")  # Recent: the frame level is absent when the frame is ""
RISK = ("riskName", "exchangeName")
ROLES = ("symbol", "strategyName", "exchangeName", "frameName", "riskName")
# The framework writes risk names nowhere but in Risk's own directory names: that part is not checked by role.
UNNAMED_ROLES = frozenset({"riskName"})


class Defer(Exception):
    """The name splits several ways and the file itself does not say which: look again once the whole dump has been
    read, so that the answer never depends on the order in which files were met."""


class Knowledge:
    """The contexts and names this dump states plainly (payload fields, unambiguous paths), bounded in size."""

    def __init__(self) -> None:
        self.contexts: dict[tuple[str, ...], set[tuple[str, ...]]] = {TRIPLE: set(), FRAMED: set(), RISK: set()}
        self.names: dict[str, set[str]] = {role: set() for role in ROLES}
        # Past the caps nothing more is remembered, so what is remembered can no longer rule a split out.
        self.complete = True

    def _add(self, into: set[Any], item: Any) -> None:
        if item not in into:
            if len(into) >= MAX_HINTS:
                self.complete = False
            else:
                into.add(item)

    def learn(self, value: Any) -> None:
        """Remember the context named by a dict with `symbol`/`strategyName`/... fields (a row, or a record key)."""
        if type(value) is not dict:
            return
        found = {role: value[role] for role in ROLES if type(value.get(role)) is str and value[role]}
        for role, name in found.items():
            self._add(self.names[role], name)
        if all(role in found for role in TRIPLE):
            triple = tuple(found[role] for role in TRIPLE)
            self._add(self.contexts[TRIPLE], triple)
            frame = value.get("frameName")
            if type(frame) is str:
                self._add(self.contexts[FRAMED], (*triple, frame))
        if all(role in found for role in RISK):
            self._add(self.contexts[RISK], tuple(found[role] for role in RISK))

    def named(self, shape: tuple[str, ...], candidate: tuple[str, ...]) -> bool:
        """Every part of the split is a name the dump uses in that role (an empty frame is no frame level)."""
        return all(role in UNNAMED_ROLES or part in self.names[role] or (role == "frameName" and part == "")
                   for role, part in zip(shape, candidate))


def _candidates(shape: tuple[str, ...], name: str, fixed: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every split of `name` into the parts of `shape` not given in `fixed` (Recent's frame may be absent)."""
    if shape == FRAMED:
        free = [*splits(name, 2)]
        found = [(*fixed, *rest, "") for rest in free]
        for rest in splits(name, 3):
            found.append((*fixed, *rest))
            if len(found) > MAX_CANDIDATES:
                break
        return found
    found = []
    for rest in splits(name, len(shape) - len(fixed)):
        found.append((*fixed, *rest))
        if len(found) > MAX_CANDIDATES:
            break
    return found


class Hints:
    """Resolves `_`-joined directory names from what the dump says, then from the database; never guesses.

    The evidence, strongest first: the file's own content (`local`), the context of the signal the file belongs to
    (Storage rows), contexts the dump names in full, splits whose every part the dump names in that role, contexts
    already in the database. Each source narrows the splits left by the previous ones; one split left is the
    answer, none or several is a Skip. A first look (`final=False`) uses the file's own content only and raises
    Defer otherwise; the final look, once every file has been read, uses everything.
    """

    def __init__(self, store: "Store", knowledge: Knowledge | None = None, *, final: bool = False) -> None:
        self._store = store
        self.knowledge = knowledge or Knowledge()
        self.final = final
        # (shape, name, fixed) -> (the answer or None, how many splits were left, the first few as text)
        self._resolved: dict[tuple[Any, ...], tuple[tuple[str, ...] | None, int, str]] = {}

    def finally_(self) -> "Hints":
        """The view that resolves what the first look deferred, sharing what was learned."""
        return Hints(self._store, self.knowledge, final=True)

    def learn(self, value: Any) -> None:
        self.knowledge.learn(value)

    async def _exists(self, model: type[Item], match: dict[str, Any]) -> bool:
        repo = self._store.repository(model)
        async with contextlib.aclosing(repo.iterate(match, {"_id": 1}, batch_size=1)) as docs:
            async for _ in docs:
                return True
        return False

    async def _in_database(self, shape: tuple[str, ...], candidate: tuple[str, ...]) -> bool:
        match = dict(zip(shape, candidate))
        if shape == RISK:
            return await self._exists(RiskItem, match)
        if shape == FRAMED:
            return await self._exists(SessionItem, match) or any(
                [await self._exists(RecentItem, {**match, "backtest": mode}) for mode in (False, True)])
        for model in (SignalItem, ScheduleItem, StrategyItem, RecentItem):
            if await self._exists(model, match):
                return True
        return False

    async def _signal_context(self, signal_id: str) -> set[tuple[str, ...]]:
        """The contexts the Storage rows of this signal id name (Storage is imported before everything that asks)."""
        found: set[tuple[str, ...]] = set()
        repo = self._store.repository(StorageItem)
        match = {"backtest": {"$in": [False, True]}, "signalId": signal_id}
        async for doc in repo.iterate(match, {"payload": 1, "_id": 0}):
            triple = _triple_of(doc.get("payload"))
            if triple is not None:
                found.add(triple)
        return found

    async def resolve(self, shape: tuple[str, ...], name: str, *, fixed: tuple[str, ...] = (),
                      local: Callable[[tuple[str, ...]], bool] | None = None,
                      signal_id: str | None = None) -> tuple[str, ...]:
        """The one context of `shape` whose `_`-join, after the parts in `fixed`, is `name`; else Defer or Skip."""
        candidates = _candidates(shape, name, fixed)
        if len(candidates) > MAX_CANDIDATES:
            raise Skip(f"ambiguous name {name!r}: it splits too many ways to be resolved")
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise Skip(f"{name!r} cannot be split into {', '.join(shape[len(fixed):])}")
        left = candidates
        if local is not None:
            left = _narrow(left, [c for c in left if local(c)])
            if len(left) == 1:
                return left[0]
        if not self.final:
            raise Defer()
        if signal_id is not None and shape == TRIPLE:
            context = await self._signal_context(signal_id)
            left = _narrow(left, [c for c in left if c in context])
            if len(left) == 1:
                return left[0]
        cache_key = (shape, name, fixed)
        cacheable = left is candidates
        if cacheable and cache_key in self._resolved:
            found, count, shown = self._resolved[cache_key]
        else:
            left = await self._from_data(shape, left)
            found, count = (left[0] if len(left) == 1 else None), len(left)
            shown = ", ".join("/".join(c[len(fixed):]) for c in left[:3]) + (", ..." if count > 3 else "")
            if cacheable:
                if len(self._resolved) >= MAX_HINTS:
                    self._resolved.clear()
                self._resolved[cache_key] = found, count, shown
        if found is None:
            what = " and ".join(shape[len(fixed):])
            why = "" if self.knowledge.complete else "; the dump names too many contexts to keep them all in memory"
            raise Skip(f"ambiguous name {name!r}: cannot tell {what} apart ({count} splits left: {shown}){why}")
        return found

    async def _from_data(self, shape: tuple[str, ...], left: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
        if self.knowledge.complete:
            left = _narrow(left, [c for c in left if c in self.knowledge.contexts[shape]])
            if len(left) > 1:
                left = _narrow(left, [c for c in left if self.knowledge.named(shape, c)])
        if len(left) > 1 and len(left) <= MAX_DB_CANDIDATES:
            left = _narrow(left, [c for c in left if await self._in_database(shape, c)])
        return left


def _narrow(left: list[tuple[str, ...]], hits: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """A source that names none of the splits left says nothing; one that names some rules the others out."""
    return hits or left
