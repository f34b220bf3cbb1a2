"""Rubin/LSST sample packets (every schema version lsst-alert-packet ships) and the reference decode."""

from __future__ import annotations

from lsst.alert.packet import Schema, get_schema_path

from tom_pittgoogle.demo.sample_lsst import make_lsst_packets

LSST_PROJECT = "pitt-alert-broker"
LSST_TABLE = f"{LSST_PROJECT}.lsst.alerts_v10_0"
LSST_PACKETS = make_lsst_packets()


def wire_record(packet: bytes) -> dict:
    """The reference decode: lsst-alert-packet's own Schema for the packet's schema id."""
    major, minor = divmod(int.from_bytes(packet[1:5], "big"), 100)
    schema = Schema.from_file(f"{get_schema_path(major, minor)}/lsst.v{major}_{minor}.alert.avsc")
    return schema.deserialize(packet[5:])
