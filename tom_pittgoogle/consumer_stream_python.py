"""The original dotted path ``tom_pittgoogle.consumer_stream_python``, kept for the settings and imports that name
it. The code lives in :mod:`tom_pittgoogle.routes.stream_python`; this name is that very module (not a copy), so
patches and isinstance checks agree."""

import sys

from tom_pittgoogle.routes import stream_python as _module

sys.modules[__name__] = _module
