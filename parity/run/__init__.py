"""Run ports of a case in lockstep: ``frameworks`` (the one registry of adapters), ``boundary`` (call a port,
check what it returns), ``workers`` (a process per framework) and ``wire`` (what crosses to them),
``interpreter`` (every child interpreter, started isolated from the working directory and dying with its
parent), ``noise`` (the frameworks' start-up lines kept off the screen), ``live`` (one running port),
``lockstep`` (the step loop), ``runner`` (``run_case``), ``result`` (the case verdict and the exit code),
``isolate``.
"""
