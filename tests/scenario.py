"""The tests' name for the product's tree descriptions (:mod:`imageaudit.example`).

A scenario is a tree as the built-in example describes one: a mapping of in-image paths to
file contents or :class:`File`, :class:`Dir`, :class:`Symlink`, :class:`Hardlink` and
:class:`Fifo` entries. :func:`write_tree` turns it into a directory, ``tests.builders.container``
into container images and ``tests.builders.vm`` into VM disks, so that every opener can be
asked for the same facts.
"""

from __future__ import annotations

from imageaudit.example import Dir, Entry, Fifo, File, Hardlink, Symlink, entries, write_tree
from imageaudit.example import Tree as Scenario

__all__ = ["Dir", "Entry", "Fifo", "File", "Hardlink", "Scenario", "Symlink", "entries",
           "write_tree"]
