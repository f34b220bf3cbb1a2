"""Alert packets: decoding bytes into records, and the survey-aware mapping to common fields.

``decode`` knows wire formats (Avro container files today, with a sniffing step so that other formats slot
in); ``surveys`` knows each survey's field names. Neither knows about Django or the routes.
"""

from .decode import AlertDecoder, decode_alert, decode_alert_b64
from .surveys import SURVEYS, Survey, detect_survey, is_lightened, lighten_alert

__all__ = [
    "SURVEYS",
    "AlertDecoder",
    "Survey",
    "decode_alert",
    "decode_alert_b64",
    "detect_survey",
    "is_lightened",
    "lighten_alert",
]
