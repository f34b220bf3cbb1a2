"""Alert packets: decoding bytes into records, and the survey-aware mapping to common fields.

``decode`` knows wire formats (ZTF's Avro container files, Rubin's Confluent wire-format Avro, Pitt-Google's
JSON), recognised from the bytes; ``surveys`` knows each survey's field names; ``photometry`` turns a packet's
history into light-curve points. None of them knows about Django or the routes.
"""

from tom_pittgoogle.core.alerts.decode import AlertDecoder, DecodeLimits, decode_alert, decode_alert_b64
from tom_pittgoogle.core.alerts.surveys import (
    SURVEY_CHOICES,
    SURVEYS,
    Survey,
    detect_survey,
    is_lightened,
    lighten_alert,
    unwrap,
)

__all__ = [
    "SURVEYS",
    "SURVEY_CHOICES",
    "AlertDecoder",
    "DecodeLimits",
    "Survey",
    "decode_alert",
    "decode_alert_b64",
    "detect_survey",
    "is_lightened",
    "lighten_alert",
    "unwrap",
]
