"""The original dotted path ``tom_pittgoogle.broker_stream_rest``, kept for the settings and imports that name it.
The code lives in :mod:`tom_pittgoogle.adapters.broker_stream_rest`; this name is that very module (not a copy),
so patches and isinstance checks agree."""

import sys

from tom_pittgoogle.adapters import broker_stream_rest as _module

sys.modules[__name__] = _module
