"""A user's program file -> a runnable port (``parity diff``): ``load`` the file, ``batches`` it is fed,
``mapping`` of its variables onto the other program's, ``port`` behind the port protocol, ``prepare`` both.
"""
