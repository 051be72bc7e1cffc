"""The subcommands of the ``threadline`` command line (see :mod:`threadline.cli._main`).

One module per command family, each exposing ``add_*_arguments``/``run_*`` pairs that
``threadline.cli._main.COMMANDS`` registers. Modules import only the standard library at the
top; rich, prompt_toolkit, stores and models are imported when a command runs, so
``threadline --help`` stays instant and ``import threadline`` never imports any of this.
"""
