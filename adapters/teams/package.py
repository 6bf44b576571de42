"""The Teams app package: teams/manifest.json filled in with the app's id and host, zipped with
its two icons, ready to upload in Teams (Apps → Manage your apps → Upload an app)."""

import json
import zipfile
from pathlib import Path
from urllib.parse import urlparse

SOURCE = Path(__file__).resolve().parents[2] / "teams"  # the checkout's teams/ folder
FILES = ("manifest.json", "color.png", "outline.png")


class PackageError(ValueError):
    """Something the admin can fix; the message says what."""


def build_manifest(template: str, *, app_id: str, endpoint: str, website: str | None = None) -> dict:
    """The manifest for one bot: `endpoint` is its messaging endpoint (https://host/api/messages)."""
    parsed = urlparse(endpoint)
    if parsed.scheme != "https" or not parsed.hostname:
        raise PackageError(
            f"the messaging endpoint must be an https URL, e.g. https://bot.example.com/api/messages; got {endpoint!r}"
        )
    filled = (
        template.replace("{{MICROSOFT_APP_ID}}", app_id)
        .replace("{{BOT_DOMAIN}}", parsed.hostname)
        .replace("{{WEBSITE_URL}}", (website or f"https://{parsed.hostname}").rstrip("/"))
    )
    return json.loads(filled)


def write_package(
    output: Path, *, app_id: str, endpoint: str, website: str | None = None, source: Path = SOURCE
) -> dict:
    if not app_id:
        raise PackageError("MICROSOFT_APP_ID is not set (or pass --app-id): the package names the bot by it")
    missing = [name for name in FILES if not (source / name).is_file()]
    if missing:
        raise PackageError(f"{source} lacks {', '.join(missing)}: run this in a frictionlog checkout or pass --source")
    manifest = build_manifest(
        (source / "manifest.json").read_text(encoding="utf-8"), app_id=app_id, endpoint=endpoint, website=website
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("manifest.json", json.dumps(manifest, indent=2))
        for name in FILES[1:]:
            package.write(source / name, name)
    return manifest
