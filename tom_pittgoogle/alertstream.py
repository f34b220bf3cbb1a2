"""The original dotted path ``tom_pittgoogle.alertstream``, kept for the settings and imports that name it. The
code lives in :mod:`tom_pittgoogle.adapters.alertstream`; this name is that very module (not a copy), so patches
and isinstance checks agree."""

import sys

from tom_pittgoogle.adapters import alertstream as _module

sys.modules[__name__] = _module
