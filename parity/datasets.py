"""Dataset-backed batch generators (registered with :func:`parity.data.register_data`).

Nothing is downloaded at run time.
"""

from __future__ import annotations
