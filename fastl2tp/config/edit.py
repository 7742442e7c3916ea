"""Change a configuration file the way the CLI changes the configuration, keeping the user's text.

The TOML text is the source of truth: a change is made to the parsed document (tomlkit keeps comments,
order and layout of everything it does not touch), and the result is loaded again with ``load_text``,
so that a change the loader would refuse is refused with the loader's own error. Nothing here writes
a file (the daemon does that, atomically).

Items are addressed by their TOML table path (``("ppp", "secret")``) and their index in the loaded
``Config``. That is the index in the document's array, except for profiles: the built-in ``default``
and ``default-encryption`` exist without a table in the file, so profiles are found by name, and a
change to a built-in that has no table yet adds ``[[ppp.profile]] name = "default"`` with the change.
"""

from __future__ import annotations

from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from ..errors import ConfigError
from .load import load_text
from .model import Config

__all__ = ["ConfigDocument"]

PROFILES = ("ppp", "profile")


class ConfigDocument:
    """A TOML configuration being edited. ``values`` are TOML-native (what a kind's ``dump`` gives);
    ``None`` removes the key, which brings back its default."""

    def __init__(self, text: str = "") -> None:
        try:
            self._doc = tomlkit.parse(text)
        except TOMLKitError as exc:
            raise ConfigError(f"TOML: {exc}") from None

    def text(self) -> str:
        return tomlkit.dumps(self._doc)

    def load(self) -> Config:
        """The configuration this text describes (``ConfigError`` if it is not a valid one)."""
        return load_text(self.text())

    # --- navigation -------------------------------------------------------------------------------

    def _container(self, path: tuple[str, ...], create: bool) -> Any:
        """The table holding the last key of ``path`` (created as needed)."""
        node: Any = self._doc
        for key in path[:-1]:
            if key not in node:
                if not create:
                    return None
                _put(node, key, tomlkit.table(is_super_table=True))
            node = node[key]
            if not hasattr(node, "keys"):
                raise ConfigError(f"{'.'.join(path)}: the file holds something other than a table at {key}")
        return node

    def _array(self, path: tuple[str, ...], create: bool, first: Any = None) -> Any:
        """The array of tables at ``path``; with ``create``, made (holding ``first``) if missing."""
        parent = self._container(path, create)
        if parent is None:
            return None
        key = path[-1]
        if key not in parent:
            if not create:
                return None
            aot = tomlkit.aot()
            if first is not None:  # an empty array of tables would be written as "key = []"
                aot.append(first)
            _put(parent, key, aot)
            return None if first is not None else parent[key]
        arr = parent[key]
        if not isinstance(arr, list):
            raise ConfigError(f"{'.'.join(path)}: the file holds something other than an array of tables")
        return arr

    def _table(self, path: tuple[str, ...]) -> Any:
        parent = self._container(path, True)
        key = path[-1]
        if key not in parent:
            _put(parent, key, tomlkit.table())
        table = parent[key]
        if not hasattr(table, "keys"):
            raise ConfigError(f"{'.'.join(path)}: the file holds something other than a table")
        return table

    def _item(self, path: tuple[str, ...], index: int, config: Config | None) -> Any:
        if path == PROFILES:
            if config is None:
                raise ConfigError("profiles are found by name: pass the loaded configuration")
            name = config.ppp.profile[index].name
            in_file = {item.get("name") for item in self._array(path, False) or []}
            if name not in in_file:
                # a built-in without a table: it and the built-ins before it (the loader puts those
                # missing from the file last, in this order) get tables, so that no number changes
                for p in config.ppp.profile[: index + 1]:
                    if p.name not in in_file:
                        self.add(path, {"name": p.name})
            for item in self._array(path, False) or []:
                if item.get("name") == name:
                    return item
            raise ConfigError(f"ppp.profile: no item named {name}")
        arr = self._array(path, False)
        if arr is None or not 0 <= index < len(arr):
            raise ConfigError(f"{'.'.join(path)}: no item {index}")
        return arr[index]

    # --- changes ---------------------------------------------------------------------------------

    @staticmethod
    def _update(table: Any, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if value is None:
                if key in table:
                    del table[key]
            elif key in table or not _insert_after_last_key(table, key, value):
                table[key] = value

    def add(self, path: tuple[str, ...], values: dict[str, Any]) -> None:
        """Append an item to the array of tables at ``path``."""
        item = tomlkit.table()
        for key, value in values.items():
            if value is not None:
                item[key] = value
        item.add(tomlkit.nl())  # a blank line after it, as people write TOML
        arr = self._array(path, True, first=item)
        if arr is not None:
            arr.append(item)

    def set(self, path: tuple[str, ...], values: dict[str, Any], index: int | None = None,
            config: Config | None = None) -> None:
        """Change keys of the table at ``path`` (``index`` None) or of one item of the array there."""
        table = self._table(path) if index is None else self._item(path, index, config)
        self._update(table, values)

    def remove(self, path: tuple[str, ...], index: int, config: Config | None = None) -> None:
        """Remove one item of the array at ``path`` (a profile by the name it has in ``config``)."""
        if path == PROFILES:
            if config is None:
                raise ConfigError("profiles are found by name: pass the loaded configuration")
            name = config.ppp.profile[index].name
            arr = self._array(path, False) or []
            for i, item in enumerate(arr):
                if item.get("name") == name:
                    del arr[i]
                    self._drop_if_empty(path)
                    return
            raise ConfigError(f"ppp.profile: no item named {name}")
        arr = self._array(path, False)
        if arr is None or not 0 <= index < len(arr):
            raise ConfigError(f"{'.'.join(path)}: no item {index}")
        del arr[index]
        self._drop_if_empty(path)

    def _drop_if_empty(self, path: tuple[str, ...]) -> None:
        """No ``key = []`` left behind when the last item of an array of tables goes."""
        parent = self._container(path, False)
        if parent is not None and path[-1] in parent and len(parent[path[-1]]) == 0:
            del parent[path[-1]]


def _put(parent: Any, key: str, item: Any) -> None:
    """A new key in a table, also in one that TOML lets the file write in pieces (tomlkit's proxy)."""
    if hasattr(parent, "append"):
        parent.append(key, item)
    else:
        parent[key] = item


def _insert_after_last_key(table: Any, key: str, value: Any) -> bool:
    """Put a new key right after the table's last key, not after the blank lines and comments that
    end the table (they usually belong to the table below). False where that cannot be done."""
    body = getattr(getattr(table, "value", None), "body", None)
    if not isinstance(body, list):
        return False
    keys = [k for k, item in body if k is not None and not isinstance(item, (tomlkit.items.Table, tomlkit.items.AoT))]
    try:
        if keys:
            table.value._insert_after(keys[-1], key, tomlkit.item(value))
        else:
            table.value._insert_at(0, key, tomlkit.item(value))
    except Exception:  # noqa: BLE001 - tomlkit internals: fall back to a plain (correct) assignment
        return False
    return True
