"""The console's themes, one TOML file each, shipped as package data (``tui.themes`` loads them).

A theme file holds Textual's theme fields: ``name`` (the file's stem),
``dark``, the colours ``primary`` (required), ``secondary``, ``accent``,
``warning``, ``error``, ``success``, ``foreground``, ``background``,
``surface``, ``panel`` and ``boost``, the numbers ``luminosity_spread`` and
``text_alpha``, and a ``[variables]`` table of extra CSS variables. The panes
colour an up-tick with ``success`` and a down-tick with ``error``.
"""
