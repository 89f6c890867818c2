"""oneapi: the composition root that turns libs and services into one program.

`oneapi.cli` is the console script; `oneapi.targets` names the targets a process can run.
"""

__version__ = "0.1.0"
