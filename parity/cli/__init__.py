"""The ``parity`` command line: argument parsing and exit codes only (``main``: the commands; ``run``: run/check;
``diff``: a user's program against its port; ``outputs``: the report files).
"""
