"""Export of incidents in GA/T 1400 (视频图像信息数据库) object form, which Chinese video-image platforms
ingest: ``MotorVehicleObject`` for plate hits, ``FaceObject`` for face hits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

CST = timezone(timedelta(hours=8))
# GA 24.8 colour codes used by GA/T 1400 PlateColor
PLATE_COLORS = {"black": "1", "white": "2", "blue": "5", "yellow": "6", "green": "9"}


def _time(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(CST).strftime("%Y%m%d%H%M%S")


def to_gat1400(document: dict) -> dict:
    camera = document["camera"]
    stamp = _time(document["occurred_at"])
    recognition = document["recognition"]
    object_id = f"{camera}02{stamp}{document['id']:05d}"[:48]
    if document["kind"] == "plate":
        return {"MotorVehicleListObject": {"MotorVehicleObject": [{
            "MotorVehicleID": object_id, "InfoKind": 1, "SourceID": camera, "DeviceID": camera,
            "PlateNo": recognition["text"], "PlateColor": PLATE_COLORS.get(recognition.get("color", ""), "99"),
            "PassTime": stamp, "HasPlate": "1",
            "StorageUrl1": document["evidence"]["frame"], "StorageUrl3": document["evidence"]["crop"],
        }]}}
    return {"FaceListObject": {"FaceObject": [{
        "FaceID": object_id, "InfoKind": 1, "SourceID": camera, "DeviceID": camera,
        "FaceAppearTime": stamp, "FaceDisAppearTime": stamp, "LocationMarkTime": stamp,
        "Similaritydegree": recognition.get("similarity"), "Name": document["watchlist"]["name"],
        "StorageUrl1": document["evidence"]["frame"], "StorageUrl2": document["evidence"]["crop"],
    }]}}


def generated_at() -> str:
    return datetime.now(UTC).astimezone(CST).strftime("%Y%m%d%H%M%S")
