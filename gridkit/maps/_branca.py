"""The one place gridkit reads branca's private element tree (``_children``, ``_id``).

branca (0.8) gives an :class:`~branca.element.Element` public ways to add a child
(``add_child``, which also replaces the child of a name in place), to name an element
(``get_name``) and to find its root (``get_root``), but none to list or remove its
children nor to set its id.  The maps need those to rebuild the layer control, to
drop CDN links from offline pages and to number the elements of a saved map, so the
two accesses to branca's internals live here: a change of branca breaks one file.
"""

from __future__ import annotations

from collections import OrderedDict

from branca.element import Element

__all__ = ["children", "set_id"]


def children(element: Element) -> OrderedDict[str, Element]:
    """The children of ``element`` by name, in render order: branca's own dict, not a copy.

    Parameters
    ----------
    element
        Any branca / folium element (a map, a figure, its header).

    Returns
    -------
    collections.OrderedDict
        Removing a key removes the child from the page; add children with
        ``element.add_child`` (which sets their parent).
    """
    # branca has no public accessor for an element's children (only add_child).
    # (RUF100: SLF001 is enabled by the layout check, `ruff --select SLF001`, not by default)
    return element._children  # noqa: SLF001


def set_id(element: Element, number: int) -> None:
    """Give ``element`` the id ``number`` (32 hex digits, as branca's random ids).

    Parameters
    ----------
    element
        Any branca / folium element; its ``get_name()`` (the JavaScript variable of
        the page) changes with its id.
    number
        The element's number in drawing order.
    """
    # branca sets a random id in __init__ and has no public setter (RUF100: as above)
    element._id = f"{number:032x}"  # noqa: SLF001
