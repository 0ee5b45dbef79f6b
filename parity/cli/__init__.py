"""The ``parity`` command line: argument parsing and exit codes only. ``main`` (the parser and the
commands), ``supervise`` (the console script runs the command in a child and never exits 0 without its
verdict), ``run`` (run and check), ``diff`` (a user's program against its port), ``traces`` (record and
compare trace files), ``report`` (what every command shows and writes, in one order), ``outputs`` (the
report files and their flags).
"""
